// Helpers for the gateway acceptance tests: a 1-node database and the gateway in
// this process, the real `lxc` binary in a child process (bounded), raw HTTPS.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClusterDatabaseClient } from "../../services/raft/src/node/database-client.ts";
import { LocalCluster } from "../../services/raft/test/node/cluster-harness.ts";
import { applySchema } from "../../services/api/src/schema.ts";
import { startGateway, type Gateway } from "../../services/api/src/server.ts";

export const LXC = "/usr/bin/lxc";

export interface Harness {
  cluster: LocalCluster;
  db: ClusterDatabaseClient;
  gateway: Gateway;
  /** The gateway's dir (holds unix.socket): LXD_DIR for local `lxc`. */
  dir: string;
  /** Scratch space for client config dirs. */
  scratch: string;
  close(): Promise<void>;
}

export async function startHarness(serverName: string): Promise<Harness> {
  const cluster = await LocalCluster.start(["n1"]);
  try {
    await cluster.waitFor("a leader", () => cluster.leader());
    const db = new ClusterDatabaseClient([...cluster.addresses.values()], cluster.tls);
    await applySchema(db);
    const dir = mkdtempSync(join(tmpdir(), "shoal-api-"));
    const scratch = mkdtempSync(join(tmpdir(), "shoal-lxc-"));
    const gateway = await startGateway({ db, dir, listen: "127.0.0.1:0", cert: cluster.tls.cert, key: cluster.tls.key, serverName, bodyLimit: 64 * 1024 });
    return {
      cluster,
      db,
      gateway,
      dir,
      scratch,
      close: async () => {
        await gateway.close();
        db.close();
        await cluster.close();
        rmSync(dir, { recursive: true, force: true });
        rmSync(scratch, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await cluster.close();
    throw e;
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real lxc with its own config dir; killed (only this child) after timeoutMs. */
export function lxc(args: string[], env: { LXD_CONF: string; LXD_DIR?: string }, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: env.LXD_CONF, LXD_CONF: env.LXD_CONF, LANG: "C" };
    if (env.LXD_DIR) childEnv.LXD_DIR = env.LXD_DIR;
    execFile(LXC, args, { env: childEnv, timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === "number" ? Number((err as NodeJS.ErrnoException).code) : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `lxc monitor ARGS` as a child (killed by its PID at the latest after `limitMs`). */
export function monitor(args: string[], env: Record<string, string>, limitMs = 20_000): { child: ChildProcess; output: () => string; stop: () => void } {
  let out = "";
  const child = spawn(LXC, ["monitor", ...args], { env: { PATH: process.env.PATH, HOME: env.LXD_CONF, LANG: "C", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (b: Buffer) => (out += b.toString("utf8")));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString("utf8")));
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, "SIGKILL");
  };
  const timer = setTimeout(stop, limitMs);
  child.on("exit", () => clearTimeout(timer));
  return { child, output: () => out, stop };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** One HTTPS request to the gateway (server certificate pinned by the caller's `ca`). */
export function https(
  address: string,
  method: string,
  path: string,
  opts: { cert?: string; key?: string; ca: string; body?: string | Buffer; headers?: Record<string, string> },
): Promise<HttpResult> {
  const [host, port] = [address.replace(/:\d+$/, ""), Number(address.replace(/^.*:/, ""))];
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port,
        method,
        path,
        cert: opts.cert,
        key: opts.key,
        ca: opts.ca,
        checkServerIdentity: () => undefined,
        headers: { "content-type": "application/json", ...(opts.headers ?? {}) },
        timeout: 10_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // left as text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
