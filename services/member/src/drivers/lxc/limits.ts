// Instance config keys the lxc driver turns into cgroup settings. Which cgroup keys
// apply depends on the host: a pure cgroup2 host (cgroup.controllers at
// /sys/fs/cgroup) takes lxc.cgroup2.*; a legacy or hybrid host (v1 controllers,
// as on this project's CI machine) takes lxc.cgroup.* — LXC ignores cgroup2 limits
// there ("Ignoring cgroup2 limits on legacy cgroup system").
//
// Applied: limits.memory (bytes, kB/MB/GB/TB, KiB/MiB/GiB/TiB, or N% of host memory),
// limits.cpu (a count N = CPUs 0..N-1, or a set like "0-1,3"), limits.processes.
// Not applied yet (accepted, no effect): limits.cpu.allowance, limits.cpu.priority,
// limits.memory.swap, limits.memory.enforce, limits.disk.priority, limits.hugepages.*.
import { existsSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { invalidArgument } from "../../errors.ts";

export type CgroupVersion = 1 | 2;

export function hostCgroupVersion(root = "/sys/fs/cgroup"): CgroupVersion {
  return existsSync(`${root}/cgroup.controllers`) ? 2 : 1;
}

const UNITS: Record<string, number> = {
  "": 1,
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
};

/** limits.memory in bytes. */
export function parseMemory(value: string, hostMemory = totalmem()): number {
  const v = value.trim();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
  if (pct) {
    const p = Number(pct[1]);
    if (p <= 0 || p > 100) throw invalidArgument(`Invalid limits.memory "${value}": a percentage is in (0, 100]`);
    return Math.floor((hostMemory * p) / 100);
  }
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(v);
  if (!m || !(m[2] in UNITS)) throw invalidArgument(`Invalid limits.memory "${value}": expected e.g. 512MiB, 1GB or 50%`);
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]]);
  if (bytes < 4096 * 1024) throw invalidArgument(`Invalid limits.memory "${value}": below 4 MiB`);
  return bytes;
}

/** limits.cpu as a cpuset list. */
export function parseCpus(value: string, hostCpus = cpus().length): string {
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (n < 1) throw invalidArgument(`Invalid limits.cpu "${value}": at least 1`);
    const count = Math.min(n, hostCpus);
    return count === 1 ? "0" : `0-${count - 1}`;
  }
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v)) throw invalidArgument(`Invalid limits.cpu "${value}": a count (2) or a set (0-1,3)`);
  for (const part of v.split(",")) {
    for (const n of part.split("-").map(Number)) {
      if (n >= hostCpus) throw invalidArgument(`Invalid limits.cpu "${value}": this member has CPUs 0-${hostCpus - 1}`);
    }
  }
  return v;
}

/** Validates the keys this driver applies (so a bad value is refused at create/update, not at start). */
export function validateLimits(config: Record<string, string>): void {
  cgroupLines(config, 1);
}

/** The cgroup lines of an LXC config for the instance config. */
export function cgroupLines(config: Record<string, string>, version: CgroupVersion): string[] {
  const lines: string[] = [];
  const key = (v1: string, v2: string) => (version === 2 ? `lxc.cgroup2.${v2}` : `lxc.cgroup.${v1}`);
  const mem = config["limits.memory"];
  if (mem) lines.push(`${key("memory.limit_in_bytes", "memory.max")} = ${parseMemory(mem)}`);
  const cpu = config["limits.cpu"];
  if (cpu) lines.push(`${key("cpuset.cpus", "cpuset.cpus")} = ${parseCpus(cpu)}`);
  const procs = config["limits.processes"];
  if (procs) {
    if (!/^\d+$/.test(procs.trim()) || Number(procs) < 1) throw invalidArgument(`Invalid limits.processes "${procs}": a positive integer`);
    lines.push(`${key("pids.max", "pids.max")} = ${Number(procs)}`);
  }
  return lines;
}
