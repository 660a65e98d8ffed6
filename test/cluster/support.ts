// Real member and gateway processes (`shoal member`, `shoal gateway`) for the
// membership acceptance tests, driven with the real `lxc` over the gateway's unix
// socket. Every process is tracked by PID and only those are ever signalled.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../services/raft/test/support/node-processes.ts";
import { lxc, type RunResult } from "../api/support.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const SHOAL = join(ROOT, "services/api/src/shoal.ts");
/** The built entry point (`npm run build`), for benchmarks: no TypeScript loader at start-up. */
const SHOAL_BUILT = join(ROOT, "dist/services/api/src/shoal.js");

export interface Proc {
  name: string;
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

export async function waitUntil(what: string, ms: number, check: () => boolean | Promise<boolean>, pollMs = 200): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** A local cluster grown member by member: member1 bootstraps it, a gateway serves it. */
export class TestCluster {
  /**
   * built: run dist/ (after `npm run build`) instead of the TypeScript sources.
   * memberArgs: extra `shoal member` arguments for every member (e.g. ["--driver", "simulated"]).
   */
  constructor(private readonly opts: { built?: boolean; memberArgs?: string[] } = {}) {}

  readonly dir = mkdtempSync(join(tmpdir(), "shoal-membership-"));
  readonly procs = new Map<string, Proc>();
  readonly addresses = new Map<string, string>();
  readonly env = { LXD_CONF: join(this.dir, "lxc"), LXD_DIR: join(this.dir, "gateway") };

  spawn(name: string, args: string[], ready: RegExp, timeoutMs = 60_000): Promise<Proc> {
    const entry = this.opts.built ? [SHOAL_BUILT] : ["--import", "tsx", SHOAL];
    const proc = spawn(process.execPath, [...entry, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const exited = new Promise<number | null>((res) => proc.once("exit", (code) => res(code)));
    const p: Proc = { name, proc, output: () => out, exited };
    this.procs.set(name, p);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${name} not ready within ${timeoutMs} ms:\n${out}`)), timeoutMs);
      const onData = (d: Buffer) => {
        out += d.toString();
        if (ready.test(out)) {
          clearTimeout(timer);
          res(p);
        }
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      void exited.then((code) => {
        clearTimeout(timer);
        rej(new Error(`${name} exited (${code}) before it was ready:\n${out}`));
      });
    });
  }

  memberDir(name: string): string {
    return join(this.dir, "members", name);
  }

  async bootstrap(name: string): Promise<void> {
    const address = `127.0.0.1:${await freePort()}`;
    this.addresses.set(name, address);
    await this.spawn(name, ["member", "--dir", this.memberDir(name), "--bootstrap", "--name", name, "--listen", address, "--coordinator-interval-ms", "500", ...(this.opts.memberArgs ?? [])], /^ready /m);
    await this.spawn("gateway", ["gateway", "--dir", this.env.LXD_DIR, "--listen", `127.0.0.1:${await freePort()}`, "--db", address, "--cert", join(this.memberDir(name), "cluster.crt"), "--key", join(this.memberDir(name), "cluster.key"), "--name", "gateway"], /^shoal gateway: https/m);
  }

  /** Runs `shoal member --join TOKEN`; resolves once it serves (rejects with its output if it fails). */
  async join(name: string, token: string): Promise<Proc> {
    const address = this.addresses.get(name) ?? `127.0.0.1:${await freePort()}`;
    this.addresses.set(name, address);
    return this.spawn(name, ["member", "--dir", this.memberDir(name), "--join", token, "--listen", address, "--coordinator-interval-ms", "500", ...(this.opts.memberArgs ?? [])], /^ready /m);
  }

  /** Starts a stopped member again on its directory. */
  async resume(name: string): Promise<Proc> {
    return this.spawn(name, ["member", "--dir", this.memberDir(name), "--coordinator-interval-ms", "500", ...(this.opts.memberArgs ?? [])], /^ready /m);
  }

  lxc(...args: string[]): Promise<RunResult> {
    return lxc(args, this.env);
  }

  /** `lxc cluster add NAME` → the printed token. */
  async token(name: string): Promise<string> {
    const r = await this.lxc("cluster", "add", name);
    if (r.code !== 0) throw new Error(`lxc cluster add ${name}: ${r.stderr}`);
    return r.stdout.trim().split("\n").pop()!;
  }

  /** `lxc cluster list -f json`. */
  async members(): Promise<{ server_name: string; roles: string[]; status: string; message: string; failure_domain: string; url: string }[]> {
    const r = await this.lxc("cluster", "list", "--format", "json");
    if (r.code !== 0) throw new Error(`lxc cluster list: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  kill(name: string, signal: NodeJS.Signals = "SIGKILL"): void {
    const p = this.procs.get(name);
    if (p && p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill(signal);
  }

  async close(): Promise<void> {
    const gateway = this.procs.get("gateway");
    const order = [...(gateway ? [gateway] : []), ...[...this.procs.values()].filter((p) => p !== gateway)];
    for (const p of order) {
      if (p.proc.exitCode !== null || p.proc.signalCode !== null) continue;
      p.proc.kill("SIGTERM");
      const timer = setTimeout(() => p.proc.kill("SIGKILL"), 5_000);
      await p.exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
