// Real Linux containers through the tools of Debian's `lxc` package. Each
// instance gets <runtime>/<name>/config (written at every start from its record,
// see config.ts) and is driven with `lxc-start -P <runtime> -n <name> -d`,
// `lxc-stop` and `lxc-attach`; its state is read from /proc and its cgroups
// (probe.ts). The rootfs stays in the instance's pool.
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { unavailable } from "../../errors.ts";
import { run } from "../../run.ts";
import {
  wantedIdMap,
  type ExecOptions,
  type ExecProcess,
  type IdMap,
  type InstanceDriver,
  type InstancePaths,
  type InstanceRecord,
  type RuntimeState,
  type StopOptions,
} from "../driver.ts";
import { lxcConfig } from "./config.ts";
import { attach } from "./exec.ts";
import { lxcHost, type LxcHost } from "./host.ts";
import { shiftTree } from "./idshift.ts";
import { countProcesses, networkOf } from "./inspect.ts";
import { pidFileOf, probeContainer, type ContainerProbe } from "./probe.ts";

export class LxcDriver implements InstanceDriver {
  readonly name = "lxc" as const;
  readonly needsRootfs = true;
  version = "";

  /** @param runtimeDir LXC's lxcpath for this agent: <runtime>/<name>/{config,lxc.log}. */
  constructor(readonly runtimeDir: string) {}

  private async host(): Promise<LxcHost> {
    const h = await lxcHost();
    if (h.problem) throw unavailable(`The lxc driver cannot run containers on this member: ${h.problem}`);
    this.version = h.version;
    return h;
  }

  async preflight(): Promise<string | undefined> {
    const h = await lxcHost();
    this.version = h.version;
    return h.problem;
  }

  async prepareRootfs(record: InstanceRecord, paths: InstancePaths): Promise<IdMap | null> {
    const want = wantedIdMap(record.config);
    await shiftTree(paths.rootfs, record.idmap, want);
    return want;
  }

  async start(record: InstanceRecord, paths: InstancePaths): Promise<void> {
    const h = await this.host();
    if (record.idmap) await checkTraversable(paths.rootfs);
    const dir = join(this.runtimeDir, record.name);
    await mkdir(dir, { recursive: true });
    const logFile = join(dir, "lxc.log");
    await writeFile(
      join(dir, "config"),
      lxcConfig(record, { rootfs: paths.rootfs, idmap: record.idmap, cgroup: h.cgroup, seccompProfile: h.seccompProfile }),
    );
    await rm(logFile, { force: true });
    const r = await run(h.bin("lxc-start"), ["-P", this.runtimeDir, "-n", record.name, "-d", "-p", pidFileOf(this.runtimeDir, record.name), "-o", logFile, "-l", "ERROR"], {
      env: h.env,
      timeoutMs: 60_000,
    });
    if (r.code !== 0) {
      const log = await readFile(logFile, "utf8").catch(() => "");
      const errors = log
        .split("\n")
        .filter((l) => / ERROR /.test(l))
        .map((l) => l.replace(/^.*? ERROR\s+\S+ - /, ""))
        .slice(0, 4);
      throw new Error(`Failed to start instance "${record.name}": ${errors.join("; ") || r.stderr.trim()}`);
    }
  }

  async stop(record: InstanceRecord, _paths: InstancePaths, opts: StopOptions): Promise<{ clean: boolean }> {
    const h = await this.host();
    const base = ["-P", this.runtimeDir, "-n", record.name];
    if ((await this.info(record.name)).state === "STOPPED") return { clean: true };
    if (!opts.force) {
      const secs = Math.max(1, Math.ceil(opts.timeoutMs / 1000));
      const r = await run(h.bin("lxc-stop"), [...base, "--nokill", "-t", String(secs)], { env: h.env, timeoutMs: secs * 1000 + 30_000 });
      if (r.code === 0 && (await this.info(record.name)).state === "STOPPED") return { clean: true };
    }
    const r = await run(h.bin("lxc-stop"), [...base, "-k"], { env: h.env, timeoutMs: 30_000 });
    if (r.code !== 0 && (await this.info(record.name)).state !== "STOPPED") {
      throw new Error(`Failed to stop instance "${record.name}": ${r.stderr.trim()}`);
    }
    return { clean: false };
  }

  async state(record: InstanceRecord): Promise<RuntimeState> {
    await this.host();
    const info = await this.info(record.name);
    if (info.state !== "RUNNING" && info.state !== "FROZEN") {
      return { status: "Stopped", pid: 0, processes: 0, memoryUsage: 0, cpuUsageNs: 0, network: [] };
    }
    const [processes, network] = await Promise.all([countProcesses(info.pid), networkOf(info.pid)]);
    return {
      status: info.state === "FROZEN" ? "Frozen" : "Running",
      pid: info.pid,
      processes,
      memoryUsage: info.memory,
      cpuUsageNs: info.cpuNs,
      network,
    };
  }

  async exec(record: InstanceRecord, _paths: InstancePaths, opts: ExecOptions): Promise<ExecProcess> {
    const h = await this.host();
    return attach({ lxcpath: this.runtimeDir, name: record.name, env: h.env, bin: h.bin }, opts);
  }

  async runningNames(names: string[]): Promise<Set<string>> {
    await this.host();
    const probes = await Promise.all(names.map(async (n) => [n, await this.info(n)] as const));
    return new Set(probes.filter(([, p]) => p.state !== "STOPPED").map(([n]) => n));
  }

  async forget(record: InstanceRecord): Promise<void> {
    await rm(join(this.runtimeDir, record.name), { recursive: true, force: true });
  }

  /**
   * State, init pid, memory and CPU time, from /proc and the cgroup files. A
   * container this agent started always has its monitor's pid file while it runs
   * (see probe.ts); without one it is stopped.
   */
  private info(name: string): Promise<ContainerProbe> {
    return probeContainer(this.runtimeDir, name);
  }
}

/**
 * An unprivileged container's root (host uid 1000000) must be able to reach its
 * rootfs: every directory above it needs the search bit for others. A temp dir
 * from mkdtemp (mode 0700) is the usual culprit; say so rather than let LXC fail
 * with "Permission denied - Failed to mount rootfs".
 */
async function checkTraversable(rootfs: string): Promise<void> {
  for (let dir = dirname(rootfs); ; dir = dirname(dir)) {
    const st = await stat(dir);
    if ((st.mode & 0o001) === 0) {
      throw unavailable(`The rootfs ${rootfs} is not reachable by an unprivileged container: ${dir} has mode ${(st.mode & 0o777).toString(8)} (needs o+x, e.g. chmod 711)`);
    }
    if (dir === dirname(dir)) break;
  }
}
