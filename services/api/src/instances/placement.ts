// Members as placement sees them (status from heartbeats, instance counts from the
// `instances` table) and the default placement policy (services/placement) applied
// to a new instance: `?target=member`, `?target=@group`, or the fewest instances.
import { filterCandidates, placeInstance, type PolicyMember, type PolicyProject } from "../../../placement/src/policy/index.ts";
import type { ReadCache } from "../cache/read-cache.ts";
import type { MemberClients } from "../cluster/member-service.ts";
import { runScriptlet, SCRIPTLET_KEY } from "../placement/scriptlet-run.ts";
import { readStoredConfig } from "../config.ts";
import { listMembers, memberView, type MemberRow } from "../cluster/members.ts";
import { clusterSettings } from "../cluster/settings.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";

/** The instance a placement scriptlet sees (config and devices with profiles applied). */
export interface PlacementInstanceInput {
  name: string;
  type: string;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  profiles: string[];
}

export interface LiveMember {
  row: MemberRow;
  status: "Online" | "Offline" | "Evacuated";
}

/** The member that owns instance `i`, refusing one that cannot be reached now (a clear 503 rather than a hang). */
export async function ownerOf(db: Database, i: { name: string; nodeId: string }): Promise<LiveMember> {
  const m = (await liveMembers(db)).find((x) => x.row.nodeId === i.nodeId);
  if (!m) throw new ApiError(500, `The cluster member of instance "${i.name}" is no longer in the cluster`);
  if (m.status === "Offline") throw new ApiError(503, `Cluster member "${m.row.name}" is offline`);
  return m;
}

/** Every member with its status now (Online / Offline / Evacuated). */
export async function liveMembers(db: Database): Promise<LiveMember[]> {
  const [rows, stored] = await Promise.all([listMembers(db), readStoredConfig(db)]);
  return withStatus(rows, stored);
}

/**
 * liveMembers() from the gateway's read cache (the same keys as the cluster routes):
 * for reads that guard no write, such as listings, which then wait for no Raft round.
 */
export async function cachedLiveMembers(db: Database, cache: ReadCache): Promise<LiveMember[]> {
  const [rows, stored] = await Promise.all([
    cache.get("members", ["members", "cluster_group_members"], () => listMembers(db)),
    cache.get("config", ["config"], () => readStoredConfig(db)),
  ]);
  return withStatus(rows, stored);
}

function withStatus(rows: MemberRow[], stored: Map<string, string>): LiveMember[] {
  const threshold = clusterSettings(stored).offlineThresholdMs;
  const now = Date.now();
  return rows.map((row) => ({ row, status: memberView(row, undefined, now, threshold).status }));
}

/** The member (by node id), or a clear error when it is gone. */
export function memberByNode(members: LiveMember[], nodeId: string): LiveMember {
  const m = members.find((x) => x.row.nodeId === nodeId);
  if (!m) throw new ApiError(500, `The instance's cluster member (node ${nodeId}) is no longer in the cluster`);
  return m;
}

/** Members as the placement policy sees them, with their instance counts (all, and the request's project). */
export function policyMembers(members: LiveMember[], counts: Map<string, { all: number; project: number }>): PolicyMember[] {
  return members.map((m) => ({
    name: m.row.name,
    status: m.status === "Online" ? "ONLINE" : m.status === "Evacuated" ? "EVACUATED" : "OFFLINE",
    architecture: m.row.architecture,
    failure_domain: m.row.failureDomain || "default",
    groups: m.row.groups,
    config: m.row.config,
    instances: counts.get(m.row.nodeId)?.all ?? 0,
    project_instances: counts.get(m.row.nodeId)?.project ?? 0,
  }));
}

/** The project's placement restrictions (restricted.cluster.*), from its config. */
async function policyProject(db: Database, project: string): Promise<PolicyProject> {
  const r = await db.query("SELECT config FROM projects WHERE name = ?", [project]);
  const config = r.rows.length ? (JSON.parse(String(r.rows[0][0])) as Record<string, string>) : {};
  const restricted = ["true", "1", "yes", "on"].includes((config.restricted ?? "").toLowerCase());
  const groups = (config["restricted.cluster.groups"] ?? "").split(",").map((g) => g.trim()).filter(Boolean);
  return {
    name: project,
    restricted_cluster_groups: restricted && groups.length ? groups : undefined,
    restricted_cluster_target: restricted && config["restricted.cluster.target"] === "block" ? "block" : "allow",
  };
}

/**
 * Where a new instance goes: the default policy over online, non-evacuated members,
 * counting the instances each already has (rows being created included). Errors are
 * the policy's (LXD's words and status): unknown member 404, offline or evacuated
 * target 400, unknown group 400, no candidate 400.
 */
export async function placeNewInstance(
  db: Database,
  opts: { project: string; architecture: string; target: string; instance?: PlacementInstanceInput },
  scriptlet?: { members: MemberClients; location: string },
): Promise<LiveMember> {
  const [members, counts, groups, project] = await Promise.all([
    liveMembers(db),
    db.query("SELECT node_id, count(*), sum(project = ?) FROM instances GROUP BY node_id", [opts.project]),
    db.query("SELECT name FROM cluster_groups ORDER BY name", []),
    policyProject(db, opts.project),
  ]);
  const byNode = new Map(counts.rows.map((r) => [String(r[0]), { all: Number(r[1]), project: Number(r[2]) }]));
  const policy = policyMembers(members, byNode);
  const request = {
    architecture: opts.architecture || undefined,
    target: opts.target || undefined,
    project,
    // Every trusted client is an administrator until restricted certificates exist.
    admin: true,
    cluster_groups: groups.rows.map((r) => String(r[0])),
  };
  const source = scriptlet && opts.instance ? (await readStoredConfig(db)).get(SCRIPTLET_KEY) : undefined;
  if (source && scriptlet && opts.instance) {
    // instances.placement.scriptlet decides among the members the rules allow; a run
    // that fails or chooses nobody fails the request (never a silent fallback).
    const allowed = filterCandidates(policy, request);
    if (!allowed.ok) throw new ApiError(allowed.status, allowed.error);
    const run = await runScriptlet(db, scriptlet.members, {
      source,
      location: scriptlet.location,
      candidates: allowed.candidates.map((c) => c.name),
      request: { instance: { ...opts.instance, project: opts.project }, reason: "new", project: opts.project, ...(opts.target ? { target: opts.target } : {}) },
    });
    if (run.error) throw ApiError.badRequest(`Instance placement scriptlet failed: ${run.error}`);
    if (!run.target) throw ApiError.badRequest("Instance placement scriptlet did not choose a cluster member (it must call set_target)");
    return members.find((m) => m.row.name === run.target)!;
  }
  const decision = placeInstance(policy, request);
  if (!decision.ok) throw new ApiError(decision.status, decision.error);
  return members.find((m) => m.row.name === decision.member)!;
}

let placing: Promise<void> = Promise.resolve();

/**
 * Waits for this gateway's turn to place a new instance; call the returned release
 * once the instance's row (CREATING) is written, or its creation failed. The counts
 * placement reads include those rows, so without turns parallel creations (e.g.
 * `lxd-benchmark launch --parallel 8`) read the same counts and all pick the same
 * emptiest member. Gateways do not take turns with each other.
 */
export async function placementTurn(): Promise<() => void> {
  const before = placing;
  let release!: () => void;
  placing = new Promise<void>((resolve) => (release = resolve));
  await before;
  return release;
}
