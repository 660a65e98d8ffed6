// Database nodes as separate OS processes on loopback, for tests and benchmarks
// that kill them for real. Only processes started here are ever signalled, by PID.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createServer } from "node:net";
import { generateCertificate, saveCertificate } from "../../src/transport/certificate.ts";
import type { TlsConfig } from "../../src/transport/credentials.ts";

const MAIN = resolve(import.meta.dirname, "../../src/node/main.ts");

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on("error", rej);
  });
}

/** The command-line arguments of services/raft/src/node/main.ts for one founding node. */
export function nodeArgs(o: { id: string; dir: string; address: string; certPath: string; keyPath: string; founders: string }): string[] {
  return ["--id", o.id, "--dir", o.dir, "--listen", o.address, "--cert", o.certPath, "--key", o.keyPath, "--bootstrap", o.founders];
}

export interface NodeProcess {
  id: string;
  address: string;
  child: ChildProcess | undefined;
}

export class ProcessCluster {
  readonly dir: string;
  readonly nodes: NodeProcess[] = [];
  tls!: TlsConfig;
  private certPath = "";
  private keyPath = "";
  private founders = "";

  constructor(private readonly extraArgs: string[] = [], dir?: string) {
    this.dir = dir ?? mkdtempSync(join(tmpdir(), "shoal-proc-"));
  }

  static async start(ids: string[], extraArgs: string[] = [], dir?: string): Promise<ProcessCluster> {
    const c = new ProcessCluster(extraArgs, dir);
    const pair = await generateCertificate({ commonName: "shoal-test", hosts: ["127.0.0.1", "localhost"] });
    c.certPath = join(c.dir, "cluster.crt");
    c.keyPath = join(c.dir, "cluster.key");
    await saveCertificate(pair, c.certPath, c.keyPath);
    c.tls = { cert: pair.cert, key: pair.key, ca: pair.cert };
    for (const id of ids) c.nodes.push({ id, address: `127.0.0.1:${await freePort()}`, child: undefined });
    c.founders = c.nodes.map((n) => `${n.id}=${n.address}`).join(",");
    await Promise.all(c.nodes.map((n) => c.startNode(n.id)));
    return c;
  }

  addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  node(id: string): NodeProcess {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`unknown node ${id}`);
    return n;
  }

  /** Starts (or restarts) a node process and resolves once it prints "ready". */
  startNode(id: string): Promise<void> {
    const n = this.node(id);
    const args = [
      "--import",
      "tsx",
      MAIN,
      ...nodeArgs({ id, dir: join(this.dir, id), address: n.address, certPath: this.certPath, keyPath: this.keyPath, founders: this.founders }),
      ...this.extraArgs,
    ];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    n.child = child;
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${id} did not start: ${stderr}`)), 30_000);
      child.stdout!.on("data", (d: Buffer) => {
        if (d.toString().includes("ready ")) {
          clearTimeout(timer);
          res();
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        rej(new Error(`${id} exited with ${code}: ${stderr}`));
      });
    });
  }

  /** SIGKILL: no goodbye, no flush. */
  kill(id: string): void {
    const n = this.node(id);
    if (n.child?.pid && n.child.exitCode === null) n.child.kill("SIGKILL");
    n.child = undefined;
  }

  rssBytes(id: string): number {
    const pid = this.node(id).child?.pid;
    if (!pid) return 0;
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(
        (n) =>
          new Promise<void>((res) => {
            const child = n.child;
            n.child = undefined;
            if (!child || child.exitCode !== null) return res();
            const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
            child.on("exit", () => {
              clearTimeout(timer);
              res();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
