// Small helpers shared by the benchmarks that compare Shoal with a real LXD cluster
// (evacuation-bench.ts, instances-bench.ts): figures, tables, bounded parallelism,
// requests over a unix socket, the real `lxc` against either system, and clean-up
// on Ctrl-C.
import { request } from "node:http";
import { runCommand, LXC_CLIENT, type RunResult } from "./lxd/lxd-cluster.ts";

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export const msText = (ms: number): string => (ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`);

/** "median (min–max)" of several runs, or the one figure. */
export function spread(xs: number[], fmt: (n: number) => string = secs): string {
  if (xs.length === 0) return "—";
  if (xs.length === 1) return fmt(xs[0]);
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}

export function printTable(rows: string[][]): void {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const r of rows) console.log(r.map((x, i) => (x ?? "").padEnd(w[i])).join("  ").trimEnd());
}

/** Runs fn over items, at most `limit` at once; results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

export interface LocalResponse {
  status: number;
  /** The parsed LXD envelope (or undefined when the body is not JSON). */
  json: { type?: string; error?: string; metadata?: any; operation?: string } | undefined;
  bytes: number;
  ms: number;
}

/** One request over a unix socket (full trust), bounded by timeoutMs. */
export function localRequest(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<LocalResponse> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {},
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks);
          let json: LocalResponse["json"];
          try {
            json = JSON.parse(text.toString("utf8"));
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, bytes: text.length, ms: performance.now() - t0 });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} over ${socketPath}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** Either system as the real `lxc` sees it: an environment (LXD_DIR, LXD_CONF) for its unix socket. */
export interface LxcTarget {
  label: string;
  env: { LXD_DIR: string; LXD_CONF: string };
}

export function lxcRun(t: LxcTarget, args: string[], timeoutMs = 120_000): Promise<RunResult> {
  return runCommand(LXC_CLIENT, args, { env: { PATH: process.env.PATH, HOME: t.env.LXD_CONF, LANG: "C", ...t.env }, timeoutMs });
}

export async function lxcOk(t: LxcTarget, args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await lxcRun(t, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${t.label}: lxc ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export interface Listed {
  name: string;
  status: string;
  location: string;
}

export async function lxcList(t: LxcTarget): Promise<Listed[]> {
  return JSON.parse(await lxcOk(t, ["list", "--format", "json"]));
}

/** Polls until check() is true; throws naming `what` after ms. */
export async function waitFor(what: string, ms: number, check: () => Promise<boolean>, pollMs = 250): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** `lxc delete --force` of `names` that exist, in batches (bounded). */
export async function deleteAll(t: LxcTarget, names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 20) await lxcRun(t, ["delete", "--force", ...names.slice(i, i + 20)], 300_000);
}

/**
 * Clean-ups run once, in reverse order, on normal exit of main() and on SIGINT/SIGTERM
 * (then the process exits 130).
 */
export class Cleanups {
  private readonly fns: (() => Promise<void>)[] = [];
  private running: Promise<void> | undefined;

  constructor() {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.once(sig, () => {
        console.error(`\n${sig}: cleaning up`);
        void this.run().finally(() => process.exit(130));
      });
    }
  }

  add(fn: () => Promise<void>): () => Promise<void> {
    let done = false;
    const once = async () => {
      if (done) return;
      done = true;
      await fn().catch((e: unknown) => console.error(`clean-up: ${e instanceof Error ? e.message : String(e)}`));
    };
    this.fns.push(once);
    return once;
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const fn of [...this.fns].reverse()) await fn();
    })();
    return this.running;
  }
}
