// Looking at a running container from the host, by its init's pid: how many
// processes it has (its pids cgroup, else its pid namespace) and its network
// addresses (`ip -j addr` inside its network namespace, with the host's iproute2).
import { readdir, readFile, readlink } from "node:fs/promises";
import { run } from "../../run.ts";
import type { NetworkAddressInfo } from "../driver.ts";

export async function countProcesses(pid: number): Promise<number> {
  try {
    const cg = await readFile(`/proc/${pid}/cgroup`, "utf8");
    const v1 = /^\d+:pids:(.*)$/m.exec(cg)?.[1];
    const v2 = /^0::(.*)$/m.exec(cg)?.[1];
    const candidates = [v1 !== undefined ? `/sys/fs/cgroup/pids${v1}` : "", v2 !== undefined ? `/sys/fs/cgroup${v2}` : ""];
    for (const dir of candidates) {
      if (!dir) continue;
      const n = Number((await readFile(`${dir}/pids.current`, "utf8").catch(() => "")).trim());
      if (n > 0) return n;
    }
    // No pids controller: count the processes in init's pid namespace.
    const ns = await readlink(`/proc/${pid}/ns/pid`);
    let count = 0;
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      if ((await readlink(`/proc/${entry}/ns/pid`).catch(() => "")) === ns) count++;
    }
    return count;
  } catch {
    return -1;
  }
}

interface IpAddr {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number; scope: string }[];
}

export async function networkOf(pid: number): Promise<{ name: string; addresses: NetworkAddressInfo[] }[]> {
  const r = await run("nsenter", ["-t", String(pid), "-n", "ip", "-j", "addr", "show"], { timeoutMs: 10_000 }).catch(() => undefined);
  if (!r || r.code !== 0) return [];
  try {
    const links = JSON.parse(r.stdout) as IpAddr[];
    return links.map((l) => ({
      name: l.ifname,
      addresses: (l.addr_info ?? [])
        .filter((a) => a.family === "inet" || a.family === "inet6")
        .map((a) => ({
          family: a.family as "inet" | "inet6",
          address: a.local,
          netmask: String(a.prefixlen),
          scope: a.scope === "host" ? "local" : a.scope,
        })),
    }));
  } catch {
    return [];
  }
}
