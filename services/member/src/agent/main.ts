// The entry point the `shoal` CLI calls to run one member agent:
//
//   const agent = await runMemberAgent({ dir, name, listen: "127.0.0.1:0", tls, driver: "lxc" });
//   ... agent.address ...
//   await agent.close();
//
// Also runnable alone for manual tests:
//   node --import tsx services/member/src/agent/main.ts --dir D --name N --listen H:P \
//        --cert cluster.crt --key cluster.key [--ca cluster.crt] [--driver lxc|simulated] \
//        [--pool NAME=dir:PATH] [--pool NAME=shared:PATH]
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { TlsConfig } from "../../../raft/src/transport/credentials.ts";
import { selectDriver, type DriverChoice } from "../drivers/select.ts";
import type { PoolConfig } from "../storage/pool.ts";
import { Member } from "./member.ts";
import { serveMember } from "./server.ts";

export interface MemberAgentOptions {
  /** The agent's state directory (images/, pools/default/, lxc/). */
  dir: string;
  /** The cluster member name this agent serves. */
  name: string;
  /** host:port to listen on (port 0: any free port). */
  listen: string;
  tls: TlsConfig;
  /** Default "lxc": refuses to start where LXC cannot run; "simulated" only when asked. */
  driver?: DriverChoice;
  /** Default: one `dir` pool "default" under dir. */
  pools?: PoolConfig[];
  defaultPool?: string;
}

export interface RunningMemberAgent {
  member: Member;
  /** host:port the agent answers on. */
  address: string;
  port: number;
  driver: string;
  close(): Promise<void>;
}

export async function runMemberAgent(opts: MemberAgentOptions): Promise<RunningMemberAgent> {
  const driver = await selectDriver(opts.driver ?? "lxc", opts.dir);
  const member = new Member({ name: opts.name, dir: opts.dir, driver, pools: opts.pools, defaultPool: opts.defaultPool });
  await member.init();
  const server = await serveMember(member, opts.listen, opts.tls);
  return { member, address: server.address, port: server.port, driver: driver.name, close: () => server.close() };
}

function parseArgs(argv: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    out.set(a.slice(2), [...(out.get(a.slice(2)) ?? []), argv[++i] ?? ""]);
  }
  return out;
}

async function cli(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const one = (k: string, d?: string) => {
    const v = args.get(k)?.[0] ?? d;
    if (v === undefined) throw new Error(`--${k} is required`);
    return v;
  };
  const cert = readFileSync(one("cert"), "utf8");
  const pools = (args.get("pool") ?? []).map((spec): PoolConfig => {
    const m = /^([^=]+)=(dir|shared):(.+)$/.exec(spec);
    if (!m) throw new Error(`--pool ${spec}: expected NAME=dir:PATH or NAME=shared:PATH`);
    return { name: m[1], driver: m[2] as "dir" | "shared", source: resolve(m[3]) };
  });
  const agent = await runMemberAgent({
    dir: resolve(one("dir")),
    name: one("name"),
    listen: one("listen", "127.0.0.1:8444"),
    tls: { cert, key: readFileSync(one("key"), "utf8"), ca: args.has("ca") ? readFileSync(one("ca"), "utf8") : cert },
    driver: one("driver", "lxc") as "lxc" | "simulated",
    pools: pools.length ? pools : undefined,
  });
  console.log(`member agent "${agent.member.name}" (driver ${agent.driver}) listening on ${agent.address}`);
  const stop = () => void agent.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  cli().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
