// `shoal up [--dir DIR] [--members N]`: a local cluster on this machine.
//
// First run: creates DIR, the cluster certificate (DIR/cluster.crt, .key; SANs
// 127.0.0.1, ::1, localhost and the host name), picks loopback ports and records
// everything in DIR/cluster.json. Every run starts, as separate OS processes of this
// same `shoal` entry point:
//   - N members:   shoal member --dir DIR/members/memberK --listen … (database node,
//                  member service, coordinator). On the first run member1 bootstraps
//                  the cluster and the others join it with join tokens the gateway
//                  issues, exactly as members join any cluster; later runs resume;
//   - one gateway: shoal gateway --dir DIR … (unix socket DIR/unix.socket).
// Again on the same DIR it resumes the same cluster on the same ports.
// Children run the way this process runs: built JavaScript (dist/, what `npm start`
// runs) or TypeScript through tsx. Their output goes to DIR/logs/<name>.log.
// SIGINT/SIGTERM/SIGHUP stop the gateway, then the members (SIGTERM by PID,
// SIGKILL after a timeout); a second signal kills what is left at once. A child that
// dies on its own is reported, not restarted.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, type WriteStream } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadOrCreateCertificate } from "../../../raft/src/transport/certificate.ts";
import { clusterCertificateOptions } from "../cluster/certificate.ts";
import { encodeJoinToken } from "../cluster/join-tokens.ts";
import { helpRequested } from "./commands.ts";
import { postLocal } from "./local-gateway.ts";

const HELP = `Usage: shoal up [--dir DIR] [--members N]

Runs a local cluster on this machine: N members (member1..memberN, default 3)
and one gateway on loopback, each its own process, all state under DIR (default
.shoal). Prints the HTTPS address and how to add it as an lxc remote. Ctrl-C stops it;
running it again on the same DIR resumes the same cluster (same ports, same data).
`;

/** DIR/cluster.json */
export interface ClusterFile {
  version: 1;
  /** The members' instance driver, chosen when the cluster was created (absent: lxc). */
  driver?: "lxc" | "simulated";
  members: { name: string; database: string }[];
  gateway: { https: string };
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

interface Child {
  name: string;
  role: "member" | "gateway";
  address: string;
  proc: ChildProcess;
  log: WriteStream;
  /** Last lines of output, for a report when it dies. */
  tail: string;
  exited: Promise<void>;
}

export async function run(args: string[]): Promise<number> {
  if (helpRequested(args, HELP)) return 0;
  const { values } = parseArgs({ args, options: { dir: { type: "string", default: ".shoal" }, members: { type: "string" } } });
  const dir = resolve(values.dir);
  const wanted = values.members === undefined ? undefined : Number(values.members);
  if (wanted !== undefined && (!Number.isInteger(wanted) || wanted < 1 || wanted > 15)) {
    throw new Error(`--members must be a whole number from 1 to 15, not '${values.members}'`);
  }
  const socket = join(dir, "unix.socket");
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new Error(`${socket} is longer than a unix socket path may be (${MAX_SOCKET_PATH} bytes): choose a shorter --dir`);
  }

  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const releaseLock = lock(dir);
  try {
    const certPath = join(dir, "cluster.crt");
    const keyPath = join(dir, "cluster.key");
    await loadOrCreateCertificate(certPath, keyPath, clusterCertificateOptions(["127.0.0.1", "::1", "localhost", os.hostname()]));
    const { cluster, created } = await loadOrCreateClusterFile(dir, wanted ?? 3);
    if (wanted !== undefined && wanted !== cluster.members.length) {
      throw new Error(
        `${join(dir, "cluster.json")} has ${plural(cluster.members.length, "member")}, not ${wanted}: ` +
          `changing the members of an existing cluster comes with the membership issue (omit --members to resume it)`,
      );
    }
    return await runCluster(dir, cluster, created, certPath, keyPath);
  } finally {
    releaseLock();
  }
}

async function loadOrCreateClusterFile(dir: string, members: number): Promise<{ cluster: ClusterFile; created: boolean }> {
  const path = join(dir, "cluster.json");
  if (existsSync(path)) {
    const cluster = JSON.parse(readFileSync(path, "utf8")) as ClusterFile;
    if (cluster.version !== 1 || !Array.isArray(cluster.members) || !cluster.gateway?.https) throw new Error(`${path} is not a shoal cluster file`);
    return { cluster, created: false };
  }
  const ports = await freePorts(members + 1);
  const cluster: ClusterFile = {
    version: 1,
    driver: lxcInstalled() ? "lxc" : "simulated",
    members: Array.from({ length: members }, (_, i) => ({ name: `member${i + 1}`, database: `127.0.0.1:${ports[i]}` })),
    gateway: { https: `127.0.0.1:${ports[members]}` },
  };
  writeFileSync(`${path}.tmp`, JSON.stringify(cluster, null, 2) + "\n");
  renameSync(`${path}.tmp`, path);
  return { cluster, created: true };
}

/** Whether Debian's lxc tools are on this machine (the lxc driver runs containers with them). */
function lxcInstalled(): boolean {
  return (process.env.PATH ?? "/usr/bin:/bin").split(":").some((d) => d && existsSync(join(d, "lxc-start")));
}

/** Distinct loopback ports that are free right now (held open together so they differ). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((res, rej) => {
      const s = createServer();
      s.once("error", rej);
      s.listen(0, "127.0.0.1", () => res(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  return ports;
}

/** DIR/shoal.pid: one `shoal up` per DIR. */
function lock(dir: string): () => void {
  const path = join(dir, "shoal.pid");
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, "utf8").trim());
    if (pid && pid !== process.pid && alive(pid)) throw new Error(`another shoal up (pid ${pid}) runs on ${dir}`);
  }
  writeFileSync(path, `${process.pid}\n`);
  return () => rmSync(path, { force: true });
}

function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("shoal");
  } catch {
    return false;
  }
}

/** How to start this same entry point again in a child process. */
function selfCommand(): { node: string; args: string[]; built: boolean } {
  const entry = resolve(import.meta.dirname, "..", import.meta.filename.endsWith(".ts") ? "shoal.ts" : "shoal.js");
  const built = entry.endsWith(".js");
  return { node: process.execPath, args: built ? [entry] : ["--import", import.meta.resolve("tsx"), entry], built };
}

async function runCluster(dir: string, cluster: ClusterFile, created: boolean, certPath: string, keyPath: string): Promise<number> {
  const self = selfCommand();
  const logs = join(dir, "logs");
  mkdirSync(logs, { recursive: true });
  const children: Child[] = [];
  let stopping = false;
  let finished: (code: number) => void = () => undefined;
  const done = new Promise<number>((res) => (finished = res));

  const start = (name: string, role: Child["role"], address: string, extraNode: string[], args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Child> => {
    const log = createWriteStream(join(logs, `${name}.log`), { flags: "a" });
    log.write(`--- ${new Date().toISOString()} shoal up starts ${name}\n`);
    // Own process group: a Ctrl-C on the terminal reaches only `shoal up`, which then
    // stops the children in order.
    const proc = spawn(self.node, [...extraNode, ...self.args, ...args], { stdio: ["ignore", "pipe", "pipe"], env, detached: true });
    const child: Child = { name, role, address, proc, log, tail: "", exited: new Promise((res) => proc.once("exit", () => res())) };
    children.push(child);
    let out = "";
    const collect = (d: Buffer) => {
      log.write(d);
      child.tail = (child.tail + d.toString()).slice(-2000);
    };
    proc.stderr!.on("data", collect);
    return new Promise<Child>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${name} did not become ready within ${START_TIMEOUT_MS / 1000} s; its log: ${join(logs, `${name}.log`)}\n${child.tail}`)), START_TIMEOUT_MS);
      proc.stdout!.on("data", (d: Buffer) => {
        collect(d);
        out += d.toString();
        if (ready.test(out)) {
          clearTimeout(timer);
          res(child);
        }
      });
      proc.once("error", (e) => {
        clearTimeout(timer);
        rej(e);
      });
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        rej(new Error(`${name} exited during start-up (${signal ?? `code ${code}`}); its log: ${join(logs, `${name}.log`)}\n${child.tail}`));
        if (!stopping) onUnexpectedExit(child, code, signal);
      });
    });
  };

  const onUnexpectedExit = (child: Child, code: number | null, signal: NodeJS.Signals | null) => {
    if (stopping || !ready) return;
    process.stderr.write(
      `shoal: ${child.name} (${child.role}, pid ${child.proc.pid}) exited unexpectedly (${signal ?? `code ${code}`}); not restarted. ` +
        (child.role === "member"
          ? `The cluster keeps serving while a majority of its ${plural(cluster.members.length, "member")} runs. `
          : `Nothing serves the API now. `) +
        `Its log: ${join(logs, `${child.name}.log`)}\n`,
    );
    if (children.every((c) => c.proc.exitCode !== null || c.proc.signalCode !== null)) {
      process.stderr.write("shoal: every child has exited; stopping\n");
      void stop(1);
    }
  };

  const stopOne = async (c: Child): Promise<void> => {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
    const timer = setTimeout(() => {
      process.stderr.write(`shoal: ${c.name} (pid ${c.proc.pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it\n`);
      c.proc.kill("SIGKILL");
    }, STOP_TIMEOUT_MS);
    c.proc.kill("SIGTERM");
    await c.exited;
    clearTimeout(timer);
  };

  const stop = async (code: number): Promise<void> => {
    if (stopping) {
      // A second signal: no more waiting.
      for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill("SIGKILL");
      return;
    }
    stopping = true;
    process.stdout.write("shoal: stopping\n");
    // The gateway first (no requests into a half-stopped database), then the nodes.
    await Promise.all(children.filter((c) => c.role === "gateway").map(stopOne));
    await Promise.all(children.filter((c) => c.role === "member").map(stopOne));
    await Promise.all(children.map((c) => new Promise<void>((res) => c.log.end(res))));
    process.stdout.write("shoal: stopped\n");
    finished(code);
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) process.stdout.write(`shoal: ${signal}\n`);
    void stop(0);
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of signals) process.on(s, onSignal);

  let ready = false;
  try {
    const nodeEnv = self.built ? { ...process.env, MALLOC_ARENA_MAX: "2" } : process.env;
    const nodeFlags = self.built ? ["--max-semi-space-size=2"] : [];
    // --no-handover: shoal up stops every member at once; handing roles among members
    // that are all stopping would only churn.
    const driver = cluster.driver ?? "lxc";
    if (driver === "simulated") {
      process.stdout.write(
        "shoal: LXC is not installed here (apt-get install lxc), so the members run the SIMULATED instance driver:\n" +
          "       instances have no processes; GET /1.0 reports driver \"simulated\". Install LXC and start a new cluster for real containers.\n",
      );
    }
    // Unprivileged containers (host uid 1000000) traverse DIR and DIR/members to reach
    // their rootfs under DIR/members/<name>/agent: 0711 lets them pass without listing.
    if (driver === "lxc") {
      mkdirSync(join(dir, "members"), { recursive: true, mode: 0o711 });
      for (const d of [dir, join(dir, "members")]) chmodSync(d, 0o711);
    }
    const memberArgs = (m: ClusterFile["members"][number]) => ["member", "--dir", join(dir, "members", m.name), "--listen", m.database, "--no-handover", "--driver", driver];
    const startMember = (m: ClusterFile["members"][number], extra: string[]) => start(m.name, "member", m.database, nodeFlags, [...memberArgs(m), ...extra], nodeEnv, /^ready /m);
    const startGateway = (db: string[]) =>
      start(
        "gateway",
        "gateway",
        cluster.gateway.https,
        [],
        ["gateway", "--dir", dir, "--listen", cluster.gateway.https, "--db", db.join(","), "--cert", certPath, "--key", keyPath],
        process.env,
        /^shoal gateway: https:\/\//m,
      );
    const [first, ...others] = cluster.members;
    if (!existsSync(join(dir, "members", first.name, "member.json"))) {
      // A new cluster, formed the way any cluster grows: the first member bootstraps
      // it, every other one joins with a join token from the gateway.
      await startMember(first, ["--bootstrap", "--name", first.name, "--cert", certPath, "--key", keyPath]);
      if (stopping) return await done;
      await startGateway([first.database]);
      for (const m of others) {
        if (stopping) return await done;
        const token = await requestJoinToken(join(dir, "unix.socket"), m.name);
        await startMember(m, ["--join", token]);
      }
    } else {
      await Promise.all(cluster.members.map((m) => startMember(m, [])));
      if (stopping) return await done;
      await startGateway(cluster.members.map((m) => m.database));
    }
    if (stopping) return await done;
    ready = true;
  } catch (e) {
    if (stopping) return await done;
    process.stderr.write(`shoal: ${e instanceof Error ? e.message : String(e)}\n`);
    void stop(1);
    const code = await done;
    for (const s of signals) process.off(s, onSignal);
    return code;
  }

  const url = `https://${cluster.gateway.https}`;
  const suggestion = randomBytes(9).toString("base64url");
  const lines = [
    `shoal: ${created ? "created" : "resumed"} the cluster in ${dir} (${plural(cluster.members.length, "member")})`,
    ...children.map((c) => `  ${c.name.padEnd(9)} ${c.role.padEnd(14)} ${c.address.padEnd(16)} pid ${c.proc.pid}`),
    `shoal: ready at ${url}  (unix socket ${join(dir, "unix.socket")})`,
    "",
    "Use it locally with full trust:",
    `  LXD_DIR=${dir} lxc info`,
    "Add it as an lxc remote with a single-use trust token (or: shoal trust add NAME --dir DIR):",
    `  LXD_DIR=${dir} lxc config trust add --name my-client`,
    "  lxc remote add shoal <the token it prints>",
    "or with a password (choose one; the certificate is the cluster's own, self-signed):",
    `  LXD_DIR=${dir} lxc config set core.trust_password ${suggestion}`,
    `  lxc remote add shoal ${url} --password ${suggestion} --accept-certificate`,
    "then: lxc info shoal:",
    `Logs: ${logs}/. Ctrl-C stops the cluster; \`shoal up --dir ${dir}\` resumes it.`,
    "",
  ];
  process.stdout.write(lines.join("\n"));
  const code = await done;
  for (const s of signals) process.off(s, onSignal);
  return code;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** A join token for member `name`, asked of the gateway over its unix socket (full trust). */
async function requestJoinToken(socketPath: string, name: string): Promise<string> {
  const r = await postLocal(socketPath, "/1.0/cluster/members", { server_name: name });
  const md = (r.json?.metadata as { metadata?: Record<string, unknown> } | undefined)?.metadata;
  if (r.status !== 202 || !md) throw new Error(`no join token for ${name}: ${r.json?.error ?? `HTTP ${r.status}`}`);
  return encodeJoinToken({ server_name: String(md.serverName), fingerprint: String(md.fingerprint), addresses: md.addresses as string[], secret: String(md.secret), expires_at: String(md.expiresAt) });
}
