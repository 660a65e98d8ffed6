// Looking at a running container from the host, by its init's pid: how many
// processes it has (its pids cgroup, else its pid namespace) and its network
// addresses (the files under /proc/<pid>/net; `ip -j addr` inside its network
// namespace when those cannot be read).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { run } from "../../run.ts";
import type { NetworkAddressInfo } from "../driver.ts";
import { readOr } from "./probe.ts";

export async function countProcesses(pid: number): Promise<number> {
  try {
    // In-memory files, read synchronously (see readOr in probe.ts).
    const cg = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    const v1 = /^\d+:pids:(.*)$/m.exec(cg)?.[1];
    const v2 = /^0::(.*)$/m.exec(cg)?.[1];
    const candidates = [v1 !== undefined ? `/sys/fs/cgroup/pids${v1}` : "", v2 !== undefined ? `/sys/fs/cgroup${v2}` : ""];
    for (const dir of candidates) {
      if (!dir) continue;
      const n = Number(readOr(`${dir}/pids.current`).trim());
      if (n > 0) return n;
    }
    // No pids controller: count the processes in init's pid namespace.
    const ns = readlinkSync(`/proc/${pid}/ns/pid`);
    const nsOf = (entry: string) => {
      try {
        return readlinkSync(`/proc/${entry}/ns/pid`);
      } catch {
        return "";
      }
    };
    let count = 0;
    for (const entry of readdirSync("/proc")) {
      if (/^\d+$/.test(entry) && nsOf(entry) === ns) count++;
    }
    return count;
  } catch {
    return -1;
  }
}

/** A network namespace's addresses, from the files under /proc/<pid>/net (no process spawned). */
export interface NetFiles {
  dev: string;
  ifInet6: string;
  fibTrie: string;
  route: string;
}

type Interface = { name: string; addresses: NetworkAddressInfo[] };

/** Interfaces of /proc/<pid>/net/dev, in order. */
function interfaceNames(dev: string): string[] {
  return dev
    .split("\n")
    .slice(2)
    .map((l) => /^\s*([^:\s]+):/.exec(l)?.[1])
    .filter((n): n is string => !!n);
}

function hexToIpv4LittleEndian(hex: string): number {
  const n = parseInt(hex, 16) >>> 0;
  // /proc/net/route prints the address as the host's (little-endian) u32.
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | ((n >>> 24) & 0xff)) >>> 0;
}

const ipv4 = (s: string) => s.split(".").reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);

function popcount(n: number): number {
  let c = 0;
  for (let x = n >>> 0; x; x >>>= 1) c += x & 1;
  return c;
}

function ipv6Text(hex: string): string {
  const groups = (hex.match(/.{4}/g) ?? []).map((g) => parseInt(g, 16).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = { at: -1, len: 0 };
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > best.len && j - i > 1) best = { at: i, len: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(":");
  return `${groups.slice(0, best.at).join(":")}::${groups.slice(best.at + best.len).join(":")}`;
}

/**
 * The addresses of every interface, as `ip addr` would list them: IPv4 local
 * addresses from fib_trie (attributed to an interface by the route table, loopback
 * by its /8), IPv6 from if_inet6. Undefined when an IPv4 address cannot be placed.
 */
export function parseNetFiles(f: NetFiles): Interface[] | undefined {
  const out = new Map<string, NetworkAddressInfo[]>(interfaceNames(f.dev).map((n) => [n, []]));
  const add = (iface: string, a: NetworkAddressInfo) => {
    const list = out.get(iface) ?? [];
    if (!list.some((x) => x.address === a.address)) list.push(a);
    out.set(iface, list);
  };
  const routes = f.route
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((c) => c.length >= 8)
    .map((c) => ({ iface: c[0]!, dest: hexToIpv4LittleEndian(c[1]!), mask: hexToIpv4LittleEndian(c[7]!) }))
    .filter((r) => r.mask !== 0);
  const lines = f.fibTrie.split("\n");
  for (let i = 1; i < lines.length; i++) {
    if (!/^\s*\/32 host LOCAL/.test(lines[i]!)) continue;
    const address = /\|-- ([\d.]+)/.exec(lines[i - 1]!)?.[1];
    if (!address) continue;
    const a = ipv4(address);
    if (address.startsWith("127.")) {
      add("lo", { family: "inet", address, netmask: "8", scope: "local" });
      continue;
    }
    const route = routes.filter((r) => ((a & r.mask) >>> 0) === r.dest).sort((x, y) => popcount(y.mask) - popcount(x.mask))[0];
    if (!route) return undefined;
    add(route.iface, { family: "inet", address, netmask: String(popcount(route.mask)), scope: "global" });
  }
  for (const l of f.ifInet6.split("\n")) {
    const c = l.trim().split(/\s+/);
    if (c.length < 6) continue;
    const scope = parseInt(c[3]!, 16);
    add(c[5]!, { family: "inet6", address: ipv6Text(c[0]!), netmask: String(parseInt(c[2]!, 16)), scope: scope === 0x10 ? "local" : scope === 0x20 ? "link" : "global" });
  }
  return [...out].map(([name, addresses]) => ({ name, addresses }));
}

interface IpAddr {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number; scope: string }[];
}

export async function networkOf(pid: number): Promise<Interface[]> {
  const read = (f: string) => readOr(`/proc/${pid}/net/${f}`);
  const dev = read("dev");
  if (dev) {
    const parsed = parseNetFiles({ dev, ifInet6: read("if_inet6"), fibTrie: read("fib_trie"), route: read("route") });
    if (parsed) return parsed;
  }
  // Unreadable: ask iproute2 inside the namespace.
  return networkByIp(pid);
}

async function networkByIp(pid: number): Promise<Interface[]> {
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
