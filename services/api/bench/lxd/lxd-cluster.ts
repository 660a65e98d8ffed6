// A real LXD 5.0.2 cluster on loopback, for benchmarks that print Shoal's figures
// beside LXD's measured in the same run (never used by tests or .ci/run).
//
// Installs Debian's `lxd` and `lxd-tools` when `lxd` / `lxd-benchmark` are missing
// (`apt-get install -y lxd lxd-tools`; `apt-get update` once only if that fails for
// lack of package lists). Starts N daemons (`lxd --group root --logfile …`, each with
// its own LXD_DIR under a fresh temp directory, tracked by PID), member i (named `ni`)
// listening on 127.0.0.i:PORT (18443 when free on every address, else another port
// free on all of them). Member 1 bootstraps with `lxd init --preseed` (a `dir` pool
// `default`, the default profile's root disk on it, no managed network, no nic:
// nothing touches host networking); the others join with a join token (`lxc cluster
// add` over member 1's unix socket) and a preseed with `cluster_token`. Then the
// busybox test image (services/member/test/support/busybox-image.ts) is imported as
// `bb`. As on the machine where the 5.0.2 reference transcripts were recorded
// (/work/shared/reference/lxd-5.0.2/README.md, cluster-join.md).
//
// The daemons run with HTTPS_PROXY/HTTP_PROXY pointing at a closed loopback port
// (127.0.0.1:9, NO_PROXY for 127.0.0.0/8): LXD fetches its instance types from the
// internet at start-up; this way that request fails on loopback instead of looking the
// host name up. Loopback addresses are never proxied, so cluster traffic is unaffected.
// `images.auto_update_interval` is 0.
//
// close(): `lxc delete --force` of every instance, `lxd shutdown` of every member
// (bounded), then SIGTERM and SIGKILL by PID to the daemons this module started (and
// only those), a forced `lxc-stop` of any container left in a member's lxcpath,
// unmounts of whatever is still mounted under the temp directory, and its removal.
// Every wait is bounded.
//
// If LXD cannot run here, `startLxdCluster` throws an LxdUnavailable whose message
// says why; `tryStartLxdCluster` returns that reason instead, for "LXD: unavailable
// (reason)" lines.
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBusyboxImage, busyboxMissing, type BusyboxImage } from "../../../member/test/support/busybox-image.ts";

export const LXD = "/usr/bin/lxd";
export const LXC_CLIENT = "/usr/bin/lxc";
export const LXD_BENCHMARK = "/usr/bin/lxd-benchmark";
/** Where LXD fetches from at start-up is sent instead: a closed loopback port. */
const DEAD_PROXY = "http://127.0.0.1:9";

/** LXD cannot run here; the message says why. */
export class LxdUnavailable extends Error {
  override readonly name = "LxdUnavailable";
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time of the command, ms. */
  ms: number;
}

export interface LxdMember {
  name: string;
  /** host:port of its REST API. */
  address: string;
  /** Its LXD_DIR. */
  dir: string;
  pid: number;
}

export interface LxdCluster {
  /** The temp directory holding everything (members' LXD_DIRs, client config, logs). */
  dir: string;
  members: LxdMember[];
  /** Member names, n1..nN. */
  names: string[];
  /** Environment for the real `lxc` (and `lxd-benchmark`) against member 1's unix socket. */
  env: { LXD_DIR: string; LXD_CONF: string; HOME: string };
  /** `lxd --version`. */
  version: string;
  /** The imported busybox image (alias `bb`). */
  image: { fingerprint: string; alias: string };
  /** Runs the real `lxc` against member 1 (stdin at EOF), bounded by timeoutMs (SIGKILL of that child). */
  lxc(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<RunResult>;
  /** Like lxc() but throws with stderr unless it exits 0; returns stdout. */
  ok(...args: string[]): Promise<string>;
  /** Runs another command (e.g. lxd-benchmark) with env, bounded. */
  run(file: string, args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<RunResult>;
  /** Tail of a member's daemon log (for error messages). */
  log(name: string, chars?: number): string;
  close(): Promise<void>;
}

export interface LxdClusterOptions {
  /** Members (default 3). */
  members?: number;
  /** Preferred port (default 18443; another free one when taken). */
  port?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Install the packages when missing (default true). */
  install?: boolean;
  /** Import the busybox image as `bb` (default true). */
  image?: boolean;
}

/** Runs a command with a bound; never throws. */
export function runCommand(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { env: opts.env, timeout: opts.timeoutMs ?? 60_000, killSignal: "SIGKILL", maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean }) | null;
        const code = !e ? 0 : typeof e.code === "number" ? e.code : null;
        const extra = e && code === null ? `\n(${e.killed ? `killed after ${opts.timeoutMs ?? 60_000} ms` : e.message})` : "";
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + extra, ms: performance.now() - t0 });
      },
    );
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(opts.input ?? "");
  });
}

/**
 * Makes sure `lxd`, `lxc` and `lxd-benchmark` are installed (Debian's `lxd`, `lxd-tools`,
 * `lxd-client`), installing them when missing. Returns undefined when they are there,
 * else why not.
 */
export async function ensureLxdInstalled(log: (line: string) => void = () => undefined): Promise<string | undefined> {
  const missing = () => [LXD, LXC_CLIENT, LXD_BENCHMARK].filter((f) => !existsSync(f));
  if (missing().length === 0) return undefined;
  if (process.getuid?.() !== 0) return `${missing().join(", ")} missing and not root to install them (apt-get install lxd lxd-tools)`;
  const apt = (args: string[]) =>
    runCommand("apt-get", args, { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, timeoutMs: 600_000 });
  log(`installing Debian's lxd and lxd-tools (${missing().join(", ")} missing)`);
  // lxd depends on lxd-client (the `lxc` client).
  let r = await apt(["install", "-y", "lxd", "lxd-tools"]);
  if (r.code !== 0 && /Unable to locate package|has no installation candidate|no installation candidate|Failed to fetch|404/i.test(r.stderr + r.stdout)) {
    log("apt-get install failed for lack of package lists: apt-get update, once");
    const u = await apt(["update"]);
    if (u.code !== 0) return `apt-get update failed: ${lastLines(u.stderr)}`;
    r = await apt(["install", "-y", "lxd", "lxd-tools"]);
  }
  if (r.code !== 0) return `apt-get install -y lxd lxd-tools failed: ${lastLines(r.stderr || r.stdout)}`;
  const still = missing();
  return still.length ? `${still.join(", ")} still missing after apt-get install lxd lxd-tools` : undefined;
}

function lastLines(text: string, n = 3): string {
  return text.trim().split("\n").slice(-n).join(" / ");
}

/** A port free on 127.0.0.1..127.0.0.n: `preferred` if it is, else one the kernel picks for 127.0.0.1 and is free on the others. */
async function commonFreePort(n: number, preferred: number): Promise<number> {
  const freeOn = (host: string, port: number) =>
    new Promise<boolean>((res) => {
      const s = createServer();
      s.once("error", () => res(false));
      s.listen(port, host, () => s.close(() => res(true)));
    });
  const freeEverywhere = async (port: number) => {
    for (let i = 1; i <= n; i++) if (!(await freeOn(`127.0.0.${i}`, port))) return false;
    return true;
  };
  if (await freeEverywhere(preferred)) return preferred;
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((res, rej) => {
      const s = createServer();
      s.once("error", rej);
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    if (await freeEverywhere(port)) return port;
  }
  throw new LxdUnavailable(`no port free on every address 127.0.0.1..127.0.0.${n}`);
}

interface Daemon extends LxdMember {
  child: ChildProcess;
  exited: Promise<void>;
  logFile: string;
}

/** Starts an LXD cluster; throws LxdUnavailable (with the reason) when LXD cannot run here. */
export async function startLxdCluster(opts: LxdClusterOptions = {}): Promise<LxdCluster> {
  const n = opts.members ?? 3;
  const log = opts.log ?? (() => undefined);
  if (process.platform !== "linux") throw new LxdUnavailable(`LXD runs on Linux only (this is ${process.platform})`);
  if (process.getuid?.() !== 0) throw new LxdUnavailable("LXD daemons need root (this process is not)");
  if (opts.install !== false) {
    const why = await ensureLxdInstalled(log);
    if (why) throw new LxdUnavailable(why);
  } else {
    const missing = [LXD, LXC_CLIENT].filter((f) => !existsSync(f));
    if (missing.length) throw new LxdUnavailable(`${missing.join(", ")} missing (apt-get install lxd lxd-tools)`);
  }
  if (opts.image !== false) {
    const bb = busyboxMissing();
    if (bb) throw new LxdUnavailable(`no busybox image: ${bb}`);
  }
  const versionRun = spawnSync(LXD, ["--version"], { encoding: "utf8", timeout: 10_000 });
  const version = (versionRun.stdout ?? "").trim() || "unknown";

  const dir = mkdtempSync(join(tmpdir(), "shoal-lxd-"));
  // Unprivileged containers' root (host uid 1000000) must traverse every parent of their rootfs.
  chmodSync(dir, 0o711);
  const conf = join(dir, "client");
  mkdirSync(conf, { recursive: true });
  const daemons: Daemon[] = [];
  const clientEnv = (lxdDir: string): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: conf, LXD_CONF: conf, LXD_DIR: lxdDir, LANG: "C" });
  const daemonEnv = (lxdDir: string): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    LXD_DIR: lxdDir,
    HOME: conf,
    LANG: "C",
    HTTPS_PROXY: DEAD_PROXY,
    HTTP_PROXY: DEAD_PROXY,
    https_proxy: DEAD_PROXY,
    http_proxy: DEAD_PROXY,
    NO_PROXY: "127.0.0.0/8,localhost,::1",
    no_proxy: "127.0.0.0/8,localhost,::1",
  });
  let image: BusyboxImage | undefined;
  let closed = false;

  const logTail = (name: string, chars = 2000): string => {
    const d = daemons.find((x) => x.name === name);
    if (!d) return "";
    let text = "";
    for (const f of [d.logFile, `${d.logFile}.out`]) {
      try {
        text += readFileSync(f, "utf8");
      } catch {
        /* not written yet */
      }
    }
    return text.slice(-chars);
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const t0 = performance.now();
    const step = (what: string) => log(`close: ${what} (${Math.round(performance.now() - t0)} ms)`);
    image?.cleanup();
    const alive = (d: Daemon) => d.child.exitCode === null && d.child.signalCode === null;
    const m1 = daemons[0];
    if (m1 && alive(m1)) {
      // Instances first (forced: busybox's init ignores LXD's default stop signal).
      const list = await runCommand(LXC_CLIENT, ["list", "--format", "csv", "-c", "n"], { env: clientEnv(m1.dir), timeoutMs: 30_000 });
      const names = list.code === 0 ? list.stdout.split("\n").map((l) => l.trim()).filter(Boolean) : [];
      for (let i = 0; i < names.length; i += 20) {
        await runCommand(LXC_CLIENT, ["delete", "--force", ...names.slice(i, i + 20)], { env: clientEnv(m1.dir), timeoutMs: 120_000 });
      }
    }
    step("instances deleted");
    await Promise.all(
      daemons.filter(alive).map((d) => runCommand(LXD, ["shutdown", "--timeout", "10"], { env: clientEnv(d.dir), timeoutMs: 15_000 })),
    );
    await Promise.all(
      daemons.map(async (d) => {
        if (alive(d)) d.child.kill("SIGTERM");
        const timer = setTimeout(() => {
          if (alive(d)) d.child.kill("SIGKILL");
        }, 10_000);
        await Promise.race([d.exited, new Promise((r) => setTimeout(r, 15_000))]);
        clearTimeout(timer);
      }),
    );
    step("daemons stopped");
    // Containers whose daemon died without stopping them (only in our members' lxcpaths).
    for (const d of daemons) {
      const lxcpath = join(d.dir, "containers");
      let names: string[] = [];
      try {
        names = readdirSync(lxcpath);
      } catch {
        continue;
      }
      for (const name of names) {
        spawnSync("lxc-stop", ["-P", lxcpath, "-n", name, "-k"], { stdio: "ignore", timeout: 20_000 });
      }
    }
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const port = await commonFreePort(n, opts.port ?? 18443);
    const startDaemon = async (i: number): Promise<Daemon> => {
      const name = `n${i}`;
      const lxdDir = join(dir, name);
      mkdirSync(lxdDir, { mode: 0o711 });
      const logFile = join(dir, `${name}.log`);
      const out = openSync(`${logFile}.out`, "a");
      const child = spawn(LXD, ["--group", "root", "--logfile", logFile], { env: daemonEnv(lxdDir), stdio: ["ignore", out, out], detached: true });
      closeSync(out);
      const exited = new Promise<void>((res) => child.once("exit", () => res()));
      child.once("error", () => undefined);
      if (child.pid === undefined) throw new LxdUnavailable(`cannot start ${LXD}`);
      const d: Daemon = { name, address: `127.0.0.${i}:${port}`, dir: lxdDir, pid: child.pid, child, exited, logFile };
      daemons.push(d);
      const ready = await runCommand(LXD, ["waitready", "--timeout", "60"], { env: clientEnv(lxdDir), timeoutMs: 70_000 });
      if (ready.code !== 0) {
        throw new LxdUnavailable(`LXD daemon ${name} did not become ready: ${lastLines(ready.stderr)}; its log: ${lastLines(logTail(name), 4)}`);
      }
      return d;
    };
    const preseed = async (d: Daemon, yaml: string) => {
      const r = await runCommand(LXD, ["init", "--preseed"], { env: clientEnv(d.dir), timeoutMs: 120_000, input: yaml });
      if (r.code !== 0) throw new LxdUnavailable(`lxd init --preseed on ${d.name} failed: ${lastLines(r.stderr)}; its log: ${lastLines(logTail(d.name), 4)}`);
    };

    log(`LXD ${version}: starting ${n} daemons on 127.0.0.1..${n}:${port} under ${dir}`);
    const first = await startDaemon(1);
    await preseed(
      first,
      [
        "config:",
        `  core.https_address: ${first.address}`,
        '  images.auto_update_interval: "0"',
        "storage_pools:",
        "- name: default",
        "  driver: dir",
        "profiles:",
        "- name: default",
        "  devices:",
        "    root:",
        "      path: /",
        "      pool: default",
        "      type: disk",
        "cluster:",
        `  server_name: ${first.name}`,
        "  enabled: true",
        "",
      ].join("\n"),
    );
    const lxcM1 = (args: string[], o: { timeoutMs?: number; input?: string } = {}) =>
      runCommand(LXC_CLIENT, args, { env: clientEnv(first.dir), timeoutMs: o.timeoutMs ?? 120_000, input: o.input });
    for (let i = 2; i <= n; i++) {
      const d = await startDaemon(i);
      const add = await lxcM1(["cluster", "add", d.name], { timeoutMs: 30_000 });
      if (add.code !== 0) throw new LxdUnavailable(`lxc cluster add ${d.name} failed: ${lastLines(add.stderr)}`);
      const token = add.stdout.trim().split("\n").pop()!.trim();
      await preseed(
        d,
        [
          "cluster:",
          "  enabled: true",
          `  server_name: ${d.name}`,
          `  server_address: ${d.address}`,
          `  cluster_token: ${token}`,
          "  member_config:",
          "  - entity: storage-pool",
          "    name: default",
          "    key: source",
          '    value: ""',
          "",
        ].join("\n"),
      );
    }
    const listed = await lxcM1(["cluster", "list", "--format", "csv"], { timeoutMs: 30_000 });
    const online = listed.stdout.split("\n").filter((l) => /,ONLINE,/.test(l)).length;
    if (listed.code !== 0 || online !== n) throw new LxdUnavailable(`LXD cluster not formed (${online}/${n} ONLINE): ${lastLines(listed.stderr || listed.stdout)}`);
    log(`LXD cluster of ${n} formed`);

    let fingerprint = "";
    if (opts.image !== false) {
      image = buildBusyboxImage();
      const imp = await lxcM1(["image", "import", image.path, "--alias", "bb"], { timeoutMs: 120_000 });
      if (imp.code !== 0) throw new LxdUnavailable(`lxc image import of the busybox image failed: ${lastLines(imp.stderr)}`);
      fingerprint = image.fingerprint;
      image.cleanup();
      log(`busybox image imported as bb (${fingerprint.slice(0, 12)})`);
    }

    const cluster: LxdCluster = {
      dir,
      members: daemons.map(({ name, address, dir: d, pid }) => ({ name, address, dir: d, pid })),
      names: daemons.map((d) => d.name),
      env: { LXD_DIR: first.dir, LXD_CONF: conf, HOME: conf },
      version,
      image: { fingerprint, alias: "bb" },
      lxc: lxcM1,
      ok: async (...args: string[]) => {
        const r = await lxcM1(args);
        if (r.code !== 0) throw new Error(`lxc ${args.join(" ")} (LXD) failed: ${r.stderr.trim()}`);
        return r.stdout;
      },
      run: (file, args, o = {}) => runCommand(file, args, { env: clientEnv(first.dir), timeoutMs: o.timeoutMs ?? 120_000, input: o.input }),
      log: logTail,
      close,
    };
    return cluster;
  } catch (err) {
    await close();
    if (err instanceof LxdUnavailable) throw err;
    throw new LxdUnavailable(err instanceof Error ? err.message : String(err));
  }
}

/** startLxdCluster, or why LXD is unavailable here. */
export async function tryStartLxdCluster(opts: LxdClusterOptions = {}): Promise<{ cluster: LxdCluster; reason?: undefined } | { cluster?: undefined; reason: string }> {
  try {
    return { cluster: await startLxdCluster(opts) };
  } catch (err) {
    return { reason: err instanceof Error ? err.message : String(err) };
  }
}

/** Lazily unmounts every mount point under `dir` (deepest first); only there. */
function unmountUnder(dir: string): void {
  let text = "";
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return;
  }
  const points = text
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)))
    .map((p) => p.replace(/\\040/g, " "))
    .sort((a, b) => b.length - a.length);
  for (const p of points) spawnSync("umount", ["-l", p], { stdio: "ignore", timeout: 10_000 });
}
