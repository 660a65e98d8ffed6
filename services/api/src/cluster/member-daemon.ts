// One cluster member's process (`shoal member`): its database node, its
// ClusterMember service (heartbeats, state, leave) and its MemberAgent (instances,
// images, pools: services/member, state under DIR/agent) on the same gRPC server,
// and the coordinator that acts while this node leads. A member starts one of three ways:
//   - bootstrap: the first member creates the cluster (a one-voter database, the
//     schema, its own member row in the `default` group);
//   - join: it redeems a join token at a gateway, receives the cluster certificate
//     and the database nodes, and enters as a stand-by;
//   - resume: DIR/member.json exists, so it starts again as what it was.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { ClusterDatabaseClient } from "../../../raft/src/node/database-client.ts";
import { DatabaseNode } from "../../../raft/src/node/database-node.ts";
import { addDatabaseService } from "../../../raft/src/node/database-service.ts";
import { loadOrCreateCertificate, saveCertificate, loadCertificate } from "../../../raft/src/transport/certificate.ts";
import { clusterCertificateOptions } from "./certificate.ts";
import { LiveTls } from "../../../raft/src/transport/live-tls.ts";
import { MemberAgentService as MemberAgentDefinition } from "../../../../proto/gen/member.ts";
import { Member as AgentMember } from "../../../member/src/agent/member.ts";
import { MemberAgentService } from "../../../member/src/agent/service.ts";
import { selectDriver } from "../../../member/src/drivers/select.ts";
import { applySchema } from "../schema.ts";
import { watchClusterCertificate } from "./certificate-rotation.ts";
import { EvacuationRunner } from "../evacuation/runner.ts";
import { Coordinator } from "./coordinator.ts";
import { redeemJoinToken } from "./join.ts";
import { handOver } from "./handover.ts";
import { decodeJoinToken } from "./join-tokens.ts";
import { insertMemberStatements, MEMBER_STATE } from "./members.ts";
import { addMemberService, hostArchitecture, MemberClients } from "./member-service.ts";
import { MemberEventBus } from "../events/member-events.ts";
import { watchSelfStops } from "../instances/self-stops.ts";

/** How long a graceful stop spends handing the role over before it stops anyway. */
const HANDOVER_MS = 5_000;

/** DIR/member.json: who this member is, written before its database node first starts. */
interface MemberFile {
  version: 1;
  nodeId: string;
  name: string;
  address: string;
  /** The database nodes known when it joined (contacted until its log arrives). */
  databaseNodes: { id: string; address: string }[];
}

export interface MemberOptions {
  dir: string;
  /** "host:port" with a fixed port (other members store it). */
  listen?: string;
  name?: string;
  bootstrap?: boolean;
  /** A join token (`lxc cluster add NAME`). */
  join?: string;
  /** Member-specific config the cluster asks a joiner for (GET /1.0/cluster member_config). */
  memberConfig?: { entity: string; name: string; key: string; value: string }[];
  /** For bootstrap: the cluster certificate to use (generated in DIR when absent). */
  certPath?: string;
  keyPath?: string;
  tickMs?: number;
  coordinatorIntervalMs?: number;
  /**
   * On a graceful stop, hand this member's database role to others first (a
   * voter is replaced before it goes). Off for `shoal up`, which stops every member.
   */
  handover?: boolean;
  /**
   * The member agent's instance driver: "lxc" (default; refuses to start where LXC
   * cannot run) or "simulated" (no processes; reported as such in GET /1.0).
   */
  driver?: "lxc" | "simulated";
  log?: (line: string) => void;
}

export interface Member {
  nodeId: string;
  name: string;
  address: string;
  node: DatabaseNode;
  coordinator: Coordinator;
  /** The member agent (instances, images, pools) served on the same gRPC server. */
  agent: AgentMember;
  /** Resolves when the cluster removed this member (it stopped by itself). */
  removed: Promise<void>;
  close(): Promise<void>;
}

function readMemberFile(dir: string): MemberFile | undefined {
  const path = join(dir, "member.json");
  if (!existsSync(path)) return undefined;
  const f = JSON.parse(readFileSync(path, "utf8")) as MemberFile;
  if (f.version !== 1 || !f.nodeId || !f.address) throw new Error(`${path} is not a shoal member file`);
  return f;
}

function writeMemberFile(dir: string, f: MemberFile): void {
  const path = join(dir, "member.json");
  writeFileSync(`${path}.tmp`, JSON.stringify(f, null, 2) + "\n", { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export async function startMember(opts: MemberOptions): Promise<Member> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const certPath = join(opts.dir, "cluster.crt");
  const keyPath = join(opts.dir, "cluster.key");
  let file = readMemberFile(opts.dir);
  let bootstrap = false;
  // The agent's driver first: a member that cannot run its driver does not join.
  const agentDir = join(opts.dir, "agent");
  const driver = await selectDriver(opts.driver ?? "lxc", agentDir);
  // Unprivileged containers (host uid 1000000) traverse DIR to reach DIR/agent/pools/...;
  // 0711 lets them pass without listing it (cluster.key itself stays 0600).
  if (driver.name === "lxc") chmodSync(opts.dir, 0o711);

  if (file) {
    if (opts.join) throw new Error(`${opts.dir} already holds member ${file.name}: it resumes (drop --join)`);
    if (opts.listen && opts.listen !== file.address) throw new Error(`${opts.dir} holds member ${file.name} at ${file.address}, not ${opts.listen}`);
  } else if (opts.join) {
    const t0 = performance.now();
    const token = decodeJoinToken(opts.join);
    if (opts.name && opts.name !== token.server_name) throw new Error(`the join token is for member "${token.server_name}", not "${opts.name}"`);
    if (!opts.listen) throw new Error("--listen HOST:PORT is required to join");
    const reply = await redeemJoinToken(token, { address: opts.listen, architecture: hostArchitecture(), member_config: opts.memberConfig ?? [] });
    await saveCertificate({ cert: reply.certificate, key: reply.key }, certPath, keyPath);
    file = { version: 1, nodeId: token.server_name, name: token.server_name, address: opts.listen, databaseNodes: reply.database_nodes };
    writeMemberFile(opts.dir, file);
    log(`joined the cluster as ${file.name} (token redeemed in ${Math.round(performance.now() - t0)} ms)`);
  } else if (opts.bootstrap) {
    if (!opts.name) throw new Error("--name is required to bootstrap a cluster");
    if (!opts.listen) throw new Error("--listen HOST:PORT is required to bootstrap a cluster");
    const [host] = opts.listen.split(/:(?=\d+$)/);
    const pair = opts.certPath && opts.keyPath && existsSync(opts.certPath)
      ? await loadCertificate(opts.certPath, opts.keyPath)
      : await loadOrCreateCertificate(certPath, keyPath, clusterCertificateOptions([host, "127.0.0.1", "::1", "localhost", os.hostname()]));
    await saveCertificate(pair, certPath, keyPath);
    file = { version: 1, nodeId: opts.name, name: opts.name, address: opts.listen, databaseNodes: [{ id: opts.name, address: opts.listen }] };
    writeMemberFile(opts.dir, file);
    bootstrap = true;
  } else {
    throw new Error(`${opts.dir} holds no member yet: start with --bootstrap (a new cluster) or --join TOKEN`);
  }

  const started = performance.now();
  const pair = await loadCertificate(certPath, keyPath);
  // Live: `lxc cluster update-certificate` swaps it in this running process.
  const tls = new LiveTls({ cert: pair.cert, key: pair.key, ca: pair.cert });
  const me = file;
  const node = await DatabaseNode.open({
    id: me.nodeId,
    dir: join(opts.dir, "db"),
    listenAddress: me.address,
    tls,
    // Ignored by a node that already has state.
    ...(bootstrap ? { bootstrap: me.databaseNodes } : { join: me.databaseNodes.filter((n) => n.id !== me.nodeId) }),
    tickMs: opts.tickMs,
  });
  const dbService = addDatabaseService(node.transport.server, node, tls);
  // The member agent answers on the member's address too (one port, one mTLS identity).
  // Its name is the node id: fixed at join, so a rename does not disown instances.
  const agent = new AgentMember({ name: me.nodeId, dir: agentDir, driver });
  await agent.init();
  node.transport.server.addService(MemberAgentDefinition, new MemberAgentService(agent, { tls }).handlers());
  const db = new ClusterDatabaseClient([me.address, ...me.databaseNodes.map((n) => n.address).filter((a) => a !== me.address)], tls);
  const members = new MemberClients(tls);
  let onRemoved: () => void = () => undefined;
  const removed = new Promise<void>((res) => (onRemoved = res));
  // Coordinator lines carry the time: they tell the story of failovers and evacuations.
  // They are also this member's `logging` events for /1.0/events listeners.
  const events = new MemberEventBus(() => me.name);
  const eventLog = (l: string) => {
    log(l);
    events.log("info", l);
  };
  const coordinatorLog = (l: string) => {
    log(`${new Date().toISOString()} coordinator: ${l}`);
    events.log("info", `coordinator: ${l}`);
  };
  const evacuations = new EvacuationRunner(db, tls, coordinatorLog);
  const coordinator = new Coordinator({ nodeId: me.nodeId, address: me.address, db, members, evacuations, intervalMs: opts.coordinatorIntervalMs, log: coordinatorLog });

  // A recorded evacuation or restore plan starts at once, not at the next round; so
  // does the coordinator of a node that has just become leader (e.g. after a handover).
  const stopPlanWatch = db.watch({ onChange: (e) => e.tables.includes("evacuation_plans") && coordinator.poke(), onLive: () => undefined, onReset: () => undefined });
  let leading = false;
  const leadership = setInterval(() => {
    if (node.isLeader() && !leading) coordinator.poke();
    leading = node.isLeader();
  }, 50);
  // Instances that stop by themselves are recorded (and ephemeral ones deleted) by their member.
  const stopSelfStopWatch = watchSelfStops({ agent, db, nodeId: me.nodeId, name: () => me.name, log: eventLog });
  const stopCertificateWatch = watchClusterCertificate({ db, tls, certPath, keyPath, stale: true, log: (l) => eventLog(`${me.name}: ${l}`) });

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    stopCertificateWatch();
    stopSelfStopWatch();
    stopPlanWatch();
    clearInterval(leadership);
    coordinator.close();
    evacuations.close();
    if (opts.handover !== false) {
      await handOver(db, me.nodeId, Date.now() + HANDOVER_MS, (l) => eventLog(`handover: ${l}`)).catch((e: unknown) =>
        log(`handover: ${e instanceof Error ? e.message : String(e)}; stopping anyway`),
      );
    }
    if (node.isLeader()) await node.transferLeadership().catch(() => undefined);
    members.close();
    db.close();
    dbService.close();
    await node.close();
  };
  addMemberService(node.transport.server, {
    nodeId: me.nodeId,
    events: (call) => events.handle(call),
    relayEvents: (gateway, bodies) => events.relay(gateway, bodies),
    onLeave: () => {
      // The cluster removed us: stop, and keep the directory from rejoining on a restart.
      log(`${me.name} was removed from the cluster; stopping`);
      renameSync(join(opts.dir, "member.json"), join(opts.dir, `member.json.removed-${Date.now()}`));
      void close().then(onRemoved);
    },
  });

  try {
    if (bootstrap) {
      await applySchema(db);
      const exists = await db.query("SELECT 1 FROM members WHERE node_id = ?", [me.nodeId]);
      if (!exists.rows.length) {
        await db.exec(insertMemberStatements({ nodeId: me.nodeId, name: me.name, address: me.address, architecture: hostArchitecture(), failureDomain: "default", state: MEMBER_STATE.created, heartbeat: new Date().toISOString() }));
      }
    } else {
      // A joiner is pending until it runs; from now on heartbeats keep it online.
      await db.exec([{ sql: "UPDATE members SET state = ?, heartbeat = ? WHERE node_id = ? AND state = ?", params: [MEMBER_STATE.created, new Date().toISOString(), me.nodeId, MEMBER_STATE.pending] }]);
    }
    // The schema this code knows (a no-op when current), then which driver runs here.
    await applySchema(db);
    await db.exec([{ sql: "UPDATE members SET driver = ? WHERE node_id = ?", params: [driver.name, me.nodeId] }]);
  } catch (e) {
    await close();
    throw e;
  }
  coordinator.start();
  log(`member ${me.name} serving (database node up and registered in ${Math.round(performance.now() - started)} ms; agent driver ${driver.name})`);
  return { nodeId: me.nodeId, name: me.name, address: me.address, node, coordinator, agent, removed, close };
}
