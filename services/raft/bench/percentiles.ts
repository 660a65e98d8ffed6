// Latency samples → summary figures, and how the bench prints them.

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array (p in [0, 100]). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p99: percentile(s, 99),
    mean: s.length ? sum / s.length : Number.NaN,
    min: s.length ? s[0] : Number.NaN,
    max: s.length ? s[s.length - 1] : Number.NaN,
  };
}

/** Milliseconds with a precision that suits their size. */
export function ms(x: number): string {
  if (!Number.isFinite(x)) return "n/a";
  if (x < 1) return `${x.toFixed(3)} ms`;
  if (x < 100) return `${x.toFixed(2)} ms`;
  return `${x.toFixed(0)} ms`;
}

export function p50p99(s: Summary): string {
  return `p50 ${ms(s.p50)} / p99 ${ms(s.p99)}`;
}

/** Megabytes (10^6 bytes), the unit of the RSS target. */
export function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function perSec(x: number): string {
  return `${Math.round(x).toLocaleString("en-US")}/s`;
}

export interface Row {
  metric: string;
  measured: string;
  target?: string;
  /** undefined: no target (context only). */
  met?: boolean;
}

/** A plain-text table: metric | measured | target | met? */
export function table(rows: readonly Row[]): string {
  const cells = rows.map((r) => [r.metric, r.measured, r.target ?? "-", r.met === undefined ? "" : r.met ? "yes" : "NO"]);
  const head = ["metric", "measured", "target", "met?"];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i])).join(" | ").trimEnd();
  const sep = widths.map((w) => "-".repeat(w)).join("-+-");
  return [line(head), sep, ...cells.map(line)].join("\n");
}

export function now(): number {
  return performance.now();
}

export function sleep(msecs: number): Promise<void> {
  return new Promise((r) => setTimeout(r, msecs));
}

/** Polls `cond` every `stepMs` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 10): Promise<boolean> {
  const end = now() + timeoutMs;
  while (now() < end) {
    if (await cond()) return true;
    await sleep(stepMs);
  }
  return cond();
}
