// What the lxc driver needs from this host, checked once: the lxc tools, root,
// cgroups, and how LXC will write an unprivileged container's id map.
//
// The id map: LXC running as root writes /proc/<pid>/uid_map itself, unless it
// finds newuidmap/newgidmap (Debian's `uidmap`, which `lxc` recommends) on its
// PATH; then it delegates to them, and they refuse a range /etc/subuid does not
// delegate to root ("newuidmap: uid range [0-65536) -> [1000000-1065536) not
// allowed"). When /etc/subuid and /etc/subgid delegate the range to root we keep
// the PATH; otherwise the agent (root, so allowed to write the map anyway) runs
// the lxc tools with a PATH from which the newuidmap directory is left out. The
// generated config has no hooks, so nothing else needs that PATH.
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { DEFAULT_IDMAP } from "../driver.ts";
import { hostCgroupVersion, type CgroupVersion } from "./limits.ts";
import { run } from "../../run.ts";

export interface LxcHost {
  /** Environment for every lxc-* tool. */
  env: NodeJS.ProcessEnv;
  /** Absolute path of a tool found on the agent's own PATH (the tools' PATH may lack its directory). */
  bin(tool: string): string;
  version: string;
  cgroup: CgroupVersion;
  /** The distro's seccomp policy, referenced by the generated config when present. */
  seccompProfile?: string;
  /** Why containers cannot run here, or undefined. */
  problem?: string;
  /** Facts for the README/test output. */
  notes: string[];
}

function onPath(tool: string, path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return dir;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Whether /etc/subuid-style `file` delegates the whole range to root. */
export function delegatesToRoot(text: string, base: number, size: number): boolean {
  for (const line of text.split("\n")) {
    const [who, start, count] = line.trim().split(":");
    if (who !== "root" && who !== "0") continue;
    const s = Number(start);
    const c = Number(count);
    if (s <= base && base + size <= s + c) return true;
  }
  return false;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

let cached: Promise<LxcHost> | undefined;

export function lxcHost(): Promise<LxcHost> {
  cached ??= probe();
  return cached;
}

async function probe(): Promise<LxcHost> {
  const notes: string[] = [];
  const path = process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin";
  let env: NodeJS.ProcessEnv = { ...process.env, PATH: path };
  const cgroup = hostCgroupVersion();
  const bin = (tool: string) => {
    const dir = onPath(tool, path);
    return dir ? join(dir, tool) : tool;
  };
  const host: LxcHost = { env, bin, version: "", cgroup, notes };
  if (!onPath("lxc-start", path)) {
    host.problem = "the lxc tools are not installed (Debian package `lxc`: lxc-start, lxc-stop, lxc-attach)";
    return host;
  }
  if (process.getuid?.() !== 0) {
    host.problem = `the agent runs as uid ${process.getuid?.()}; the lxc driver needs root to map ids and start containers`;
    return host;
  }
  const r = await run(bin("lxc-start"), ["--version"]);
  host.version = r.stdout.trim();
  const newuidmapDir = onPath("newuidmap", path);
  if (newuidmapDir) {
    const { hostBase, size } = DEFAULT_IDMAP;
    const ok =
      delegatesToRoot(readOr("/etc/subuid"), hostBase, size) && delegatesToRoot(readOr("/etc/subgid"), hostBase, size);
    if (!ok) {
      const dirs = path.split(delimiter).filter((d) => d && !existsSync(join(d, "newuidmap")) && !existsSync(join(d, "newgidmap")));
      env = { ...process.env, PATH: dirs.join(delimiter) || "/usr/sbin" };
      host.env = env;
      notes.push(`newuidmap found in ${newuidmapDir} but /etc/subuid or /etc/subgid do not delegate ${hostBase}:${size} to root: lxc tools run without it on PATH, so LXC writes the id map itself`);
    }
  }
  for (const p of ["/usr/share/lxc/config/common.seccomp"]) if (existsSync(p)) host.seccompProfile = p;
  if (!existsSync("/proc/self/ns/user")) host.problem = "the kernel has no user namespaces (needed for unprivileged containers)";
  notes.push(`cgroup v${cgroup}${cgroup === 1 ? " (legacy/hybrid: limits via lxc.cgroup.*)" : ""}`);
  return host;
}
