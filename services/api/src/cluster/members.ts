// Cluster members as stored (the `members` table) and as LXD shows them
// (api.ClusterMember): roles come from the database's Raft configuration, status
// from the member's last heartbeat.
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import type { Param } from "../../../raft/src/db/param.ts";
import { Role } from "../../../../proto/gen/raft.ts";
import type { StatusReply } from "../../../../proto/gen/database.ts";
import type { Database } from "../schema.ts";
import type { DatabaseRole, RoleMember } from "./rebalance.ts";

export const MEMBER_STATE = { created: 0, pending: 1, evacuated: 2 } as const;

/** Roles an operator may add or remove (`lxc cluster role add|remove`). */
export const CUSTOM_ROLES = ["event-hub", "ovn-chassis"] as const;

export interface MemberRow {
  nodeId: string;
  name: string;
  address: string;
  architecture: string;
  description: string;
  failureDomain: string;
  config: Record<string, string>;
  roles: string[];
  state: number;
  heartbeat: string;
  groups: string[];
}

/** LXD's api.ClusterMember. */
export interface MemberView {
  roles: string[];
  failure_domain: string;
  description: string;
  config: Record<string, string>;
  groups: string[];
  server_name: string;
  url: string;
  database: boolean;
  status: "Online" | "Offline" | "Evacuated";
  message: string;
  architecture: string;
}

const COLUMNS = "node_id, name, address, architecture, description, failure_domain, config, roles, state, heartbeat";

function fromRow(r: Param[], groups: Map<string, string[]>): MemberRow {
  const nodeId = String(r[0]);
  return {
    nodeId,
    name: String(r[1]),
    address: String(r[2]),
    architecture: String(r[3]),
    description: String(r[4]),
    failureDomain: String(r[5]),
    config: JSON.parse(String(r[6])) as Record<string, string>,
    roles: JSON.parse(String(r[7])) as string[],
    state: Number(r[8]),
    heartbeat: String(r[9]),
    groups: groups.get(nodeId) ?? [],
  };
}

/** Every member (pending ones only when asked), sorted by name. */
export async function listMembers(db: Pick<Database, "query">, opts: { pending?: boolean; stale?: boolean } = {}): Promise<MemberRow[]> {
  const where = opts.pending ? "" : `WHERE state != ${MEMBER_STATE.pending}`;
  const [rows, groups] = await Promise.all([
    db.query(`SELECT ${COLUMNS} FROM members ${where} ORDER BY name`, [], { stale: opts.stale }),
    db.query("SELECT node_id, group_name FROM cluster_group_members ORDER BY group_name", [], { stale: opts.stale }),
  ]);
  const byMember = new Map<string, string[]>();
  for (const [id, g] of groups.rows) byMember.set(String(id), [...(byMember.get(String(id)) ?? []), String(g)]);
  return rows.rows.map((r) => fromRow(r, byMember));
}

export async function getMember(db: Pick<Database, "query">, name: string): Promise<MemberRow | undefined> {
  return (await listMembers(db)).find((m) => m.name === name);
}

/** The database role a member's node holds in the Raft configuration (spare when it has none). */
export function databaseRole(status: StatusReply | undefined, nodeId: string): DatabaseRole {
  const role = status?.nodes.find((n) => n.id === nodeId)?.role;
  return role === Role.VOTER ? "voter" : role === Role.STANDBY ? "standby" : "spare";
}

/** Whether a member missed heartbeats for longer than the offline threshold. */
export function isOffline(m: MemberRow, now: number, offlineThresholdMs: number): boolean {
  return now - Date.parse(m.heartbeat) > offlineThresholdMs;
}

/** LXD's role list: custom roles, then database-leader, then database or database-standby. */
export function memberRoles(m: MemberRow, status: StatusReply | undefined): string[] {
  const roles = [...m.roles];
  const role = databaseRole(status, m.nodeId);
  if (status?.leader && status.leader === m.nodeId) roles.push("database-leader");
  if (role === "voter") roles.push("database");
  if (role === "standby") roles.push("database-standby");
  return roles;
}

export function memberView(m: MemberRow, status: StatusReply | undefined, now: number, offlineThresholdMs: number): MemberView {
  const role = databaseRole(status, m.nodeId);
  let state: MemberView["status"] = "Online";
  let message = "Fully operational";
  if (m.state === MEMBER_STATE.evacuated) {
    state = "Evacuated";
    message = "Unavailable due to maintenance";
  } else if (isOffline(m, now, offlineThresholdMs)) {
    state = "Offline";
    message = `No heartbeat for ${formatDuration(now - Date.parse(m.heartbeat))} (${m.heartbeat})`;
  }
  return {
    roles: memberRoles(m, status),
    failure_domain: m.failureDomain,
    description: m.description,
    config: m.config,
    groups: m.groups,
    server_name: m.name,
    url: `https://${m.address}`,
    database: role !== "spare",
    status: state,
    message,
    architecture: m.architecture,
  };
}

/** "25.3s", "3m12.5s", "1h2m3s" (Go's duration style, to the tenth of a second). */
export function formatDuration(ms: number): string {
  const tenths = Math.max(0, Math.round(ms / 100));
  const h = Math.floor(tenths / 36000);
  const m = Math.floor((tenths % 36000) / 600);
  const s = (tenths % 600) / 10;
  return `${h ? `${h}h` : ""}${h || m ? `${m}m` : ""}${s}s`;
}

/** The statements that record a new member (and put it in the `default` group). */
export function insertMemberStatements(m: Omit<MemberRow, "groups" | "roles" | "config" | "description"> & { groups?: string[] }): ExecStatement[] {
  return [
    {
      sql: `INSERT INTO members (${COLUMNS}) VALUES (?, ?, ?, ?, '', ?, '{}', '[]', ?, ?)`,
      params: [m.nodeId, m.name, m.address, m.architecture, m.failureDomain, m.state, m.heartbeat],
    },
    ...(m.groups ?? ["default"]).map((g) => ({ sql: "INSERT INTO cluster_group_members (group_name, node_id) VALUES (?, ?)", params: [g, m.nodeId] })),
  ];
}

export const PROTO_ROLE: Record<DatabaseRole, Role> = { voter: Role.VOTER, standby: Role.STANDBY, spare: Role.SPARE };

/**
 * The rebalancer's view of the members that hold a database node: role, liveness from
 * heartbeats (`alwaysOnline`: the member asking, which is alive by definition) and
 * whether each is leaving (evacuated, or the member being handed over).
 */
export function roleMembers(
  rows: MemberRow[],
  status: StatusReply,
  offlineThresholdMs: number,
  opts: { now?: number; alwaysOnline?: string; leaving?: string } = {},
): RoleMember[] {
  const now = opts.now ?? Date.now();
  return rows
    .filter((m) => status.nodes.some((n) => n.id === m.nodeId))
    .map((m) => ({
      id: m.nodeId,
      role: databaseRole(status, m.nodeId),
      online: m.nodeId === opts.alwaysOnline || !isOffline(m, now, offlineThresholdMs),
      failureDomain: m.failureDomain,
      leader: m.nodeId === status.leader,
      leaving: m.state === MEMBER_STATE.evacuated || m.nodeId === opts.leaving,
    }));
}
