// `shoal member …`: one cluster member (services/api/src/cluster/member-daemon.ts):
// its database node, its member service and the coordinator.
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { startMember } from "../cluster/member-daemon.ts";
import { helpRequested } from "./commands.ts";
import { keepHeapNearLiveSize } from "../../../raft/src/node/heap-growth.ts";

const HELP = `Usage: shoal member --dir DIR (--bootstrap --name NAME --listen HOST:PORT [--cert F --key F]
                                 | --join TOKEN --listen HOST:PORT [--member-config ENTITY.NAME.KEY=VALUE]...
                                 | [resume])
                    [--tick-ms MS] [--coordinator-interval-ms MS] [--no-handover]
                    [--driver lxc|simulated]

Runs one cluster member: its replicated database node and member service on --listen
(gRPC, mutual TLS with the cluster certificate) and, while its database node leads,
the coordinator (heartbeats, database roles, token expiry).
  --bootstrap   the first member: creates the cluster (certificate from --cert/--key,
                or generated into DIR).
  --join TOKEN  a new member: TOKEN comes from \`lxc cluster add NAME\`; the member takes
                the token's NAME. The cluster certificate is checked against the token's
                fingerprint before the secret is sent. --member-config supplies what
                the cluster asks each member for (GET /1.0/cluster member_config), e.g.
                storage-pool.default.source=/srv/shoal/pool.
Without either, DIR must hold a member, which resumes. Prints "ready HOST:PORT" once it
serves. SIGTERM/SIGINT first hand this member's database role over (a voter is
replaced before it goes; at most 5 s; --no-handover skips it), then stop cleanly.
  --driver      the member agent's instance driver (DIR/agent): lxc (default; refuses to
                start where LXC cannot run) or simulated (no processes, said as such).
`;

/** ENTITY.NAME.KEY=VALUE, e.g. storage-pool.default.source=/srv/shoal/pool */
function parseMemberConfig(text: string): { entity: string; name: string; key: string; value: string } {
  const m = /^([a-z-]+)\.([^.=]+)\.([^=]+)=(.*)$/.exec(text);
  if (!m) throw new Error(`--member-config wants ENTITY.NAME.KEY=VALUE (e.g. storage-pool.default.source=/srv/pool), not '${text}'`);
  return { entity: m[1], name: m[2], key: m[3], value: m[4] };
}

export async function run(args: string[]): Promise<number | undefined> {
  keepHeapNearLiveSize(); // this process runs a database node (services/raft/src/node/heap-growth.ts)
  if (helpRequested(args, HELP)) return 0;
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: "string" },
      name: { type: "string" },
      listen: { type: "string" },
      bootstrap: { type: "boolean", default: false },
      join: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      "tick-ms": { type: "string" },
      "coordinator-interval-ms": { type: "string" },
      "no-handover": { type: "boolean", default: false },
      "member-config": { type: "string", multiple: true, default: [] },
      driver: { type: "string", default: "lxc" },
    },
  });
  if (!values.dir) throw new Error("--dir DIR is required");
  if (values.bootstrap && values.join) throw new Error("--bootstrap and --join exclude each other");
  if (values.driver !== "lxc" && values.driver !== "simulated") throw new Error(`--driver must be lxc or simulated, not ${values.driver}`);
  const member = await startMember({
    dir: resolve(values.dir),
    name: values.name,
    listen: values.listen,
    bootstrap: values.bootstrap,
    join: values.join,
    certPath: values.cert,
    keyPath: values.key,
    tickMs: values["tick-ms"] ? Number(values["tick-ms"]) : undefined,
    coordinatorIntervalMs: values["coordinator-interval-ms"] ? Number(values["coordinator-interval-ms"]) : undefined,
    handover: !values["no-handover"],
    memberConfig: values["member-config"].map(parseMemberConfig),
    driver: values.driver,
  });
  process.stdout.write(`ready ${member.address}\n`);
  const stop = () => void member.close().finally(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  void member.removed.then(() => process.exit(0));
  return undefined;
}
