// `lxc cluster list` as a whole process (the real lxc 5.0.2), over the unix socket and
// over HTTPS, against several targets measured side by side: every round runs each
// target once, in turn, so a shared 2-core machine's load falls on all of them alike.
// Two series: back to back (ROUNDS rounds), and after IDLE_MS of quiet before each
// round (IDLE_ROUNDS), which is how a person types commands: the gateway's caches have
// seen the coordinator's heartbeat writes meanwhile and the client's trust answer is
// older than any TTL. Bounded: every run has a 30 s limit, the rounds are counted.
import { execFile } from "node:child_process";
import { median } from "./bench-support.ts";

export const ROUNDS = Number(process.env.API_BENCH_LIST_ROUNDS ?? 30);
export const IDLE_ROUNDS = Number(process.env.API_BENCH_IDLE_ROUNDS ?? 8);
export const IDLE_MS = 1_500;

export interface ListTarget {
  label: string;
  /** `lxc cluster list` arguments (e.g. ["cluster", "list", "shoal:"]). */
  args: string[];
  /** LXD_CONF / LXD_DIR / HOME for the client. */
  env: Record<string, string>;
  /** The same command's figure on LXD 5.0.2 from issue 3, when one is recorded. */
  reference?: string;
}

export interface ListFigures {
  target: ListTarget;
  backToBack: number[];
  idle: number[];
  failures: string[];
}

function timeProcess(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile("/usr/bin/lxc", args, { env: { PATH: process.env.PATH, LANG: "C", ...env }, timeout: 30_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`${err.message.split("\n")[0]} ${String(stderr).trim()}`)) : resolve(performance.now() - t0),
    );
  });
}

async function round(figures: ListFigures[], into: "backToBack" | "idle"): Promise<void> {
  for (const f of figures) {
    try {
      f[into].push(await timeProcess(f.target.args, f.target.env));
    } catch (e) {
      f.failures.push(e instanceof Error ? e.message : String(e));
    }
  }
}

/** Runs the two series over `targets`; one warm-up run each first (not counted). */
export async function measureClusterList(targets: ListTarget[]): Promise<ListFigures[]> {
  const figures = targets.map((target) => ({ target, backToBack: [] as number[], idle: [] as number[], failures: [] as string[] }));
  await round(figures, "backToBack");
  for (const f of figures) f.backToBack = [];
  for (let i = 0; i < ROUNDS; i++) await round(figures, "backToBack");
  for (let i = 0; i < IDLE_ROUNDS; i++) {
    await new Promise((r) => setTimeout(r, IDLE_MS));
    await round(figures, "idle");
  }
  return figures;
}

const ms = (xs: number[]) => (xs.length ? `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})` : "—");

/** Table rows: target, back-to-back median (min–max), after-idle median, issue 3's LXD figure. */
export function clusterListRows(figures: ListFigures[]): string[][] {
  const rows = [["lxc cluster list (whole process)", `back to back, median of ${ROUNDS} ms`, `after ${IDLE_MS / 1000} s idle, median of ${IDLE_ROUNDS} ms`, "issue 3: LXD 5.0.2"]];
  for (const f of figures) {
    rows.push([f.target.label, ms(f.backToBack), ms(f.idle), f.target.reference ?? ""]);
    if (f.failures.length) rows.push([`  ${f.failures.length} failed: ${f.failures[0].slice(0, 160)}`, "", "", ""]);
  }
  return rows;
}
