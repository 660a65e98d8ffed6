// Database node processes for the bench. Like test/support/node-processes.ts
// (same main.ts, same arguments), but it keeps every PID it started so that a
// failure half-way through starting, an exception or Ctrl-C still ends them all,
// and it can pass flags to node itself (e.g. --cpu-prof). Only these PIDs are
// ever signalled.

import { existsSync } from "node:fs";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { generateCertificate, saveCertificate } from "../src/transport/certificate.ts";
import type { TlsConfig } from "../src/transport/credentials.ts";
import { freePort, nodeArgs } from "../test/support/node-processes.ts";

/**
 * The node program as it runs in production: the `npm run build` output (plain
 * JavaScript, no tsx), falling back to src/node/main.ts under tsx when not built.
 */
const BUILT_MAIN = resolve(import.meta.dirname, "../../../dist/services/raft/src/node/main.js");
export const DEFAULT_MAIN = existsSync(BUILT_MAIN) ? BUILT_MAIN : resolve(import.meta.dirname, "../src/node/main.ts");

export interface BenchNode {
  id: string;
  address: string;
  child: ChildProcess | undefined;
  /** The tail of its stderr, for error messages. */
  stderr: string;
  /** Memory reports it printed (see mem-probe.mjs). */
  memReports: MemoryReport[];
}

export interface MemorySample {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, number>;
}

export interface MemoryReport {
  before: MemorySample;
  afterGc?: MemorySample;
}

export class BenchCluster {
  readonly nodes: BenchNode[] = [];
  /** Every child ever spawned that may still run. */
  private readonly children = new Set<ChildProcess>();
  tls!: TlsConfig;
  private certPath = "";
  private keyPath = "";
  private founders = "";

  private constructor(
    readonly dir: string,
    private readonly nodeArgs: string[],
    private readonly nodeFlags: string[],
    private readonly main: string,
  ) {}

  /**
   * Writes a cluster certificate into `dir` and starts one process per id (data in
   * `dir/<id>`). `nodeArgs` go to main.ts, `nodeFlags` to node. The cluster is handed
   * to `track` before any process starts, so the caller can always clean up.
   */
  static async start(
    dir: string,
    ids: string[],
    nodeArgs: string[],
    nodeFlags: string[],
    track: (c: BenchCluster) => void,
    main = DEFAULT_MAIN,
  ): Promise<BenchCluster> {
    const c = new BenchCluster(dir, nodeArgs, nodeFlags, main);
    track(c);
    const pair = await generateCertificate({ commonName: "shoal-bench", hosts: ["127.0.0.1", "localhost"] });
    c.certPath = join(dir, "cluster.crt");
    c.keyPath = join(dir, "cluster.key");
    await saveCertificate(pair, c.certPath, c.keyPath);
    c.tls = { cert: pair.cert, key: pair.key, ca: pair.cert };
    for (const id of ids) c.nodes.push({ id, address: `127.0.0.1:${await freePort()}`, child: undefined, stderr: "", memReports: [] });
    c.founders = c.nodes.map((n) => `${n.id}=${n.address}`).join(",");
    await Promise.all(c.nodes.map((n) => c.startNode(n.id)));
    return c;
  }

  node(id: string): BenchNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`unknown node ${id}`);
    return n;
  }

  addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  /** Starts (or restarts) a node; resolves once it prints "ready". */
  startNode(id: string, timeoutMs = 30_000): Promise<void> {
    const n = this.node(id);
    const args = [
      ...this.nodeFlags,
      ...(this.main.endsWith(".ts") ? ["--import", "tsx"] : []),
      this.main,
      ...nodeArgs({ id, dir: join(this.dir, id), address: n.address, certPath: this.certPath, keyPath: this.keyPath, founders: this.founders }),
      ...this.nodeArgs,
    ];
    // As deploy/systemd runs nodes: fewer malloc arenas keep native memory compact.
    const env = { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? "2" };
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env });
    this.children.add(child);
    n.child = child;
    n.stderr = "";
    let partial = "";
    child.stderr!.on("data", (d: Buffer) => {
      const text = d.toString();
      n.stderr = (n.stderr + text).slice(-4000);
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith("shoal-mem ")) continue;
        try {
          n.memReports.push(JSON.parse(line.slice("shoal-mem ".length)) as MemoryReport);
        } catch {
          // not ours after all
        }
      }
    });
    return new Promise((res, rej) => {
      let ready = false;
      const timer = setTimeout(() => rej(new Error(`${id} did not start within ${timeoutMs} ms: ${n.stderr}`)), timeoutMs);
      child.stdout!.on("data", (d: Buffer) => {
        if (!ready && d.toString().includes("ready ")) {
          ready = true;
          clearTimeout(timer);
          res();
        }
      });
      child.on("exit", (code, signal) => {
        this.children.delete(child);
        clearTimeout(timer);
        if (!ready) rej(new Error(`${id} exited (${code ?? signal}) before it was ready: ${n.stderr}`));
      });
    });
  }

  pid(id: string): number | undefined {
    return this.node(id).child?.pid;
  }

  /** SIGKILL: no goodbye, no flush. */
  kill(id: string): void {
    const n = this.node(id);
    if (n.child?.pid && n.child.exitCode === null && n.child.signalCode === null) n.child.kill("SIGKILL");
    n.child = undefined;
  }

  /** VmRSS and VmHWM (peak) of a node process, in bytes. */
  memory(id: string): { rss: number; peak: number } {
    const pid = this.pid(id);
    if (!pid) return { rss: 0, peak: 0 };
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb("VmRSS"), peak: kb("VmHWM") };
  }

  /** CPU time (user + system, all threads) a node process has used so far, in seconds. */
  cpuSeconds(id: string): number {
    const pid = this.pid(id);
    if (!pid) return Number.NaN;
    // Fields after the ")" of the command name: utime and stime are the 12th and 13th, in USER_HZ (100/s).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /**
   * Asks a node started with mem-probe.mjs for its memory breakdown (SIGUSR2) and
   * returns the parsed "shoal-mem" line it prints, or undefined if none came.
   */
  async memoryReport(id: string, timeoutMs = 3_000): Promise<MemoryReport | undefined> {
    const n = this.node(id);
    // Without the probe, SIGUSR2's default action would end the process.
    if (!n.child?.pid || !this.nodeFlags.some((f) => f.includes("mem-probe"))) return undefined;
    const seen = n.memReports.length;
    n.child.kill("SIGUSR2");
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && n.memReports.length === seen) await new Promise((r) => setTimeout(r, 20));
    return n.memReports[seen];
  }

  /** SIGTERM (a clean stop, which also writes --cpu-prof profiles), SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    await Promise.all(
      [...this.children].map(
        (child) =>
          new Promise<void>((res) => {
            if (child.exitCode !== null || child.signalCode !== null) return res();
            const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
            child.once("exit", () => {
              clearTimeout(timer);
              res();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
    for (const n of this.nodes) n.child = undefined;
  }

  /** For exit paths that cannot wait: SIGKILL every child of ours still running. */
  killAllSync(): void {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  }
}
