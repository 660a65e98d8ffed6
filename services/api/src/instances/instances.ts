// Instances as the cluster records them (the `instances` table: where each lives,
// its config) and as LXD shows them (api.Instance, api.InstanceState), with the live
// status asked of the owning member's agent.
import { createHash, randomBytes } from "node:crypto";
import type { Param } from "../../../raft/src/db/param.ts";
import { InstanceStatus, type InstanceInfo, type InstanceStateReply } from "../../../../proto/gen/member.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";
import { ZERO_TIME } from "../images/images.ts";

export interface InstanceRow {
  project: string;
  name: string;
  nodeId: string;
  agentName: string;
  type: string;
  architecture: string;
  description: string;
  ephemeral: boolean;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  profiles: string[];
  imageFingerprint: string;
  createdAt: string;
  lastUsedAt: string;
  /** CREATING (reserved, the agent is making it), STOPPED or RUNNING (last known). */
  power: string;
  /** The storage pool of its root disk. */
  pool: string;
}

const COLUMNS = "project, name, node_id, agent_name, type, architecture, description, ephemeral, config, devices, profiles, image_fingerprint, created_at, last_used_at, power, pool";

function fromRow(r: Param[]): InstanceRow {
  return {
    project: String(r[0]),
    name: String(r[1]),
    nodeId: String(r[2]),
    agentName: String(r[3]),
    type: String(r[4]),
    architecture: String(r[5]),
    description: String(r[6]),
    ephemeral: Number(r[7]) !== 0,
    config: JSON.parse(String(r[8])) as Record<string, string>,
    devices: JSON.parse(String(r[9])) as Record<string, Record<string, string>>,
    profiles: JSON.parse(String(r[10])) as string[],
    imageFingerprint: String(r[11]),
    createdAt: String(r[12]),
    lastUsedAt: String(r[13]),
    power: String(r[14]),
    pool: String(r[15]),
  };
}

export async function listInstances(db: Pick<Database, "query">, project?: string): Promise<InstanceRow[]> {
  const r = project === undefined
    ? await db.query(`SELECT ${COLUMNS} FROM instances ORDER BY project, name`, [])
    : await db.query(`SELECT ${COLUMNS} FROM instances WHERE project = ? ORDER BY name`, [project]);
  return r.rows.map(fromRow);
}

export async function findInstance(db: Pick<Database, "query">, project: string, name: string): Promise<InstanceRow> {
  const r = await db.query(`SELECT ${COLUMNS} FROM instances WHERE project = ? AND name = ?`, [project, name]);
  if (!r.rows.length) throw ApiError.notFound("Instance not found");
  return fromRow(r.rows[0]);
}

export function insertInstanceStatement(i: InstanceRow) {
  return {
    sql: `INSERT INTO instances (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    params: [i.project, i.name, i.nodeId, i.agentName, i.type, i.architecture, i.description, i.ephemeral ? 1 : 0, JSON.stringify(i.config), JSON.stringify(i.devices), JSON.stringify(i.profiles), i.imageFingerprint, i.createdAt, i.lastUsedAt, i.power, i.pool],
  };
}

/** LXD's instance name rule (a host name label). */
export function validateInstanceName(name: string): void {
  if (name === "") throw ApiError.badRequest("Instance name can't be empty");
  if (name.length > 63) throw ApiError.badRequest("Instance name is too long (at most 63 characters)");
  if (!/^[A-Za-z0-9-]+$/.test(name)) throw ApiError.badRequest(`Invalid instance name "${name}": only letters, digits and hyphens are allowed`);
  if (/^[0-9-]/.test(name)) throw ApiError.badRequest(`Invalid instance name "${name}": it must start with a letter`);
  if (name.endsWith("-")) throw ApiError.badRequest(`Invalid instance name "${name}": it must not end with a hyphen`);
}

/**
 * The name the member's agent runs an instance under: the instance name in the
 * default project; elsewhere prefixed by a short hash of the project (the agent has
 * one namespace per member, LXD's on-disk "project_name" is not a valid agent name).
 */
/**
 * The agent name of a new instance: agentNameFor(), unless a renamed instance still
 * carries it (a rename changes only the cluster's name), then with a random suffix.
 */
export async function freeAgentName(db: Pick<Database, "query">, project: string, name: string): Promise<string> {
  const base = agentNameFor(project, name);
  const taken = await db.query("SELECT 1 FROM instances WHERE agent_name = ?", [base]);
  if (!taken.rows.length) return base;
  return `${base.slice(0, 54).replace(/-+$/, "")}-${randomBytes(4).toString("hex")}`;
}

export function agentNameFor(project: string, name: string): string {
  if (project === "default") return name;
  const n = `p${createHash("sha256").update(project).digest("hex").slice(0, 8)}-${name}`;
  if (n.length > 63) throw ApiError.badRequest(`Instance name "${name}" is too long for project "${project}" (at most ${63 - 10} characters)`);
  return n;
}

/** A random name when the request has none (LXD picks one too). */
export function randomInstanceName(): string {
  const a = ["brave", "calm", "eager", "fond", "keen", "lucid", "merry", "noble", "proud", "quick", "sunny", "witty"];
  const b = ["otter", "heron", "trout", "perch", "shark", "squid", "whale", "crab", "eel", "pike", "carp", "seal"];
  const pick = (xs: string[]) => xs[Math.floor(Math.random() * xs.length)];
  return `${pick(a)}-${pick(b)}-${Math.floor(Math.random() * 1000)}`;
}

/** LXD's status word and code. */
export interface LiveStatus {
  status: string;
  status_code: number;
}

export const STOPPED: LiveStatus = { status: "Stopped", status_code: 102 };
export const RUNNING: LiveStatus = { status: "Running", status_code: 103 };
/** An instance whose member cannot be reached (offline) shows as LXD does: Error. */
export const UNREACHABLE: LiveStatus = { status: "Error", status_code: 112 };

export function liveStatus(s: { status: InstanceStatus; statusText: string; statusCode: number }): LiveStatus {
  if (s.statusText && s.statusCode) return { status: s.statusText, status_code: s.statusCode };
  switch (s.status) {
    case InstanceStatus.RUNNING:
      return RUNNING;
    case InstanceStatus.FROZEN:
      return { status: "Frozen", status_code: 110 };
    case InstanceStatus.ERROR:
      return UNREACHABLE;
    default:
      return STOPPED;
  }
}

export const infoStatus = (i: InstanceInfo): LiveStatus => liveStatus(i);

export interface Expanded {
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
}

/** LXD's api.Instance. */
export function instanceView(i: InstanceRow, live: LiveStatus, location: string, expanded: Expanded) {
  return {
    architecture: i.architecture,
    config: i.config,
    devices: i.devices,
    ephemeral: i.ephemeral,
    profiles: i.profiles,
    stateful: false,
    description: i.description,
    created_at: i.createdAt,
    expanded_config: expanded.config,
    expanded_devices: expanded.devices,
    name: i.name,
    status: live.status,
    status_code: live.status_code,
    last_used_at: i.lastUsedAt || ZERO_TIME,
    location,
    type: i.type,
    project: i.project,
  };
}

/** LXD's api.InstanceState from the agent's answer (or an empty one). */
export function stateView(live: LiveStatus, s?: InstanceStateReply) {
  const network: Record<string, unknown> = {};
  for (const n of s?.network ?? []) {
    network[n.name] = {
      addresses: n.addresses.map((a) => ({ family: a.family, address: a.address, netmask: a.netmask, scope: a.scope })),
      counters: { bytes_received: 0, bytes_sent: 0, packets_received: 0, packets_sent: 0, errors_received: 0, errors_sent: 0, packets_dropped_outbound: 0, packets_dropped_inbound: 0 },
      hwaddr: "",
      host_name: "",
      mtu: n.name === "lo" ? 65536 : 1500,
      state: n.addresses.length ? "up" : "down",
      type: n.name === "lo" ? "loopback" : "broadcast",
    };
  }
  return {
    status: live.status,
    status_code: live.status_code,
    disk: {},
    memory: { usage: s?.memoryUsage ?? 0, usage_peak: 0, swap_usage: 0, swap_usage_peak: 0 },
    network: Object.keys(network).length ? network : null,
    pid: s && s.pid > 0 ? s.pid : 0,
    processes: s ? s.processes : 0,
    cpu: { usage: s?.cpuUsageNs ?? 0 },
  };
}
