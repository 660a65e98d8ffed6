// Small helpers shared by the benchmarks that compare Shoal with a real LXD cluster
// (evacuation-bench.ts, instances-bench.ts): figures, tables, bounded parallelism,
// requests over a unix socket, the real `lxc` against either system, and clean-up
// on Ctrl-C.
import { request } from "node:http";
import { TestCluster } from "../../../test/cluster/support.ts";
import { killLeftovers, startContainerCluster } from "../../../test/instances/support.ts";
import { buildBusyboxImage } from "../../member/test/support/busybox-image.ts";
export { mapLimit } from "../../member/src/map-limit.ts";
import { runCommand, tryStartLxdCluster, LXC_CLIENT, type LxdCluster, type RunResult } from "./lxd/lxd-cluster.ts";

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

/** Runs one part of a bench; a failure is logged and handed to onError (to print with the figures), and the next part still runs. */
export async function runPart(name: string, fn: () => Promise<unknown>, onError: (error: string) => void, log: (line: string) => void): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    log(`FAILED ${name}: ${error}`);
    onError(error);
  }
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

export const SHOAL_MEMBERS = ["member1", "member2", "member3"];

/**
 * Runs fn against a 3-member Shoal cluster of built processes and a gateway, with the
 * busybox image imported as `bb`: real containers (lxc driver; containers still running
 * under `leftovers()` names are killed at the end) or simulated members. Always closed.
 */
export async function withShoalCluster<T>(
  cleanups: Cleanups,
  opts: { simulated?: boolean; leftovers?: () => string[]; log: (line: string) => void },
  fn: (t: LxcTarget, c: TestCluster) => Promise<T>,
): Promise<T> {
  const c = new TestCluster({ built: true, memberArgs: opts.simulated ? ["--driver", "simulated"] : [] });
  const image = buildBusyboxImage();
  const close = cleanups.add(async () => {
    if (process.env.SHOAL_BENCH_DUMP) for (const p of c.procs.values()) process.stderr.write(`--- ${p.name}\n${p.output().slice(-20000)}\n`);
    if (!opts.simulated) killLeftovers(c, SHOAL_MEMBERS, opts.leftovers?.() ?? []);
    await c.close();
    image.cleanup();
  });
  try {
    if (opts.simulated) {
      await c.bootstrap(SHOAL_MEMBERS[0]);
      for (const name of SHOAL_MEMBERS.slice(1)) await c.join(name, await c.token(name));
    } else {
      await startContainerCluster(c, SHOAL_MEMBERS);
    }
    const t: LxcTarget = { label: opts.simulated ? "Shoal (simulated)" : "Shoal", env: c.env };
    await lxcOk(t, ["image", "import", image.path, "--alias", "bb"]);
    opts.log(`Shoal: ${SHOAL_MEMBERS.length} members (${opts.simulated ? "simulated" : "lxc"} driver) and a gateway up, image bb imported`);
    return await fn(t, c);
  } finally {
    await close();
  }
}

/**
 * Runs fn against a real LXD cluster (lxd/lxd-cluster.ts), always closed; returns the
 * line that says what it was, or "LXD: unavailable (reason)" without running fn.
 */
export async function withLxdCluster(cleanups: Cleanups, log: (line: string) => void, fn: (t: LxcTarget, l: LxdCluster) => Promise<void>): Promise<string> {
  const started = await tryStartLxdCluster({ log });
  if (!started.cluster) return `LXD: unavailable (${started.reason})`;
  const l = started.cluster;
  const close = cleanups.add(() => l.close());
  try {
    await fn({ label: "LXD", env: l.env }, l);
    return `LXD ${l.version}: ${l.names.length} daemons on ${l.members.map((m) => m.address).join(", ")} (dir pool, no managed network)`;
  } finally {
    await close();
  }
}
