// The cluster's storage pools as the database records them (`storage_pools`,
// `storage_pool_members`, migration 9) and as LXD shows them (api.StoragePool).
//
// Two drivers, both real directories on the members' hosts:
//   dir     local to each member: a member-specific `source` (default: a directory of
//           the member's agent). Moving an instance between members copies it.
//   shared  one `source` path that every member mounts (NFS, CephFS, a bind mount...),
//           remote: true. Moving an instance relocates it: no copy, only the owner
//           changes (the agent's AdoptInstance).
// Members learn a pool through their agent's EnsurePool: when it is created, and again
// (idempotently) before an instance is created on, copied to or relocated onto them.
import { z } from "zod";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import type { PoolSpec } from "../../../../proto/gen/member.ts";
import type { MemberClient } from "../../../member/src/agent/client.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";

export type PoolDriver = "dir" | "shared";
export const POOL_DRIVERS: { name: PoolDriver; remote: boolean }[] = [
  { name: "dir", remote: false },
  { name: "shared", remote: true },
];

export interface PoolRow {
  name: string;
  driver: PoolDriver;
  description: string;
  /** Cluster-wide config (for `shared`: `source`). */
  config: Record<string, string>;
  state: "CREATED" | "PENDING";
  /** Member-specific config by node id (for `dir`: `source`). */
  members: Map<string, Record<string, string>>;
}

/** Keys set per member (`lxc storage create P dir source=... --target M`). */
const MEMBER_KEYS: Record<PoolDriver, string[]> = { dir: ["source"], shared: [] };
/** Keys that are the same on every member. */
const GLOBAL_KEYS: Record<PoolDriver, string[]> = { dir: [], shared: ["source"] };

const poolName = z
  .string()
  .min(1, "Storage pool name can't be empty")
  .max(63, "Storage pool name is too long (at most 63 characters)")
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "Invalid storage pool name: letters, digits, '-', '_' and '.' only, starting with a letter or digit");
const absolutePath = z.string().regex(/^\/.*/, "must be an absolute path");

export const createPoolSchema = z.object({
  name: z.string(), // checked by validatePoolName (LXD-style message)
  driver: z.string(),
  description: z.string().optional(),
  config: z.record(z.string(), z.string()).nullish(),
});

export function isPoolDriver(d: string): d is PoolDriver {
  return d === "dir" || d === "shared";
}

/**
 * Validates a pool config for `driver`: `member` = keys given with `--target` (only
 * member-specific ones), otherwise the cluster-wide keys. Unknown keys are refused.
 */
export function validatePoolConfig(driver: PoolDriver, config: Record<string, string>, scope: "member" | "cluster"): void {
  const allowed = scope === "member" ? MEMBER_KEYS[driver] : GLOBAL_KEYS[driver];
  for (const [k, v] of Object.entries(config)) {
    if (!allowed.includes(k)) {
      if (scope === "cluster" && MEMBER_KEYS[driver].includes(k)) throw ApiError.badRequest(`Config key "${k}" is cluster member specific`);
      if (scope === "member" && GLOBAL_KEYS[driver].includes(k)) throw ApiError.badRequest(`Config key "${k}" may not be used as member-specific key`);
      throw ApiError.badRequest(`Invalid config key "${k}" for a ${driver} storage pool`);
    }
    if (k === "source") {
      const r = absolutePath.safeParse(v);
      if (!r.success) throw ApiError.badRequest(`Invalid value for config key "source": ${r.error.issues[0].message}`);
    }
  }
  if (scope === "cluster" && driver === "shared" && !config.source) throw ApiError.badRequest('A shared storage pool needs "source": the path every cluster member mounts');
}

export function validatePoolName(name: string): void {
  const r = poolName.safeParse(name);
  if (!r.success) throw ApiError.badRequest(r.error.issues[0].message);
}

export async function listPools(db: Pick<Database, "query">): Promise<PoolRow[]> {
  const [pools, members] = await Promise.all([
    db.query("SELECT name, driver, description, config, state FROM storage_pools ORDER BY name", []),
    db.query("SELECT pool, node_id, config FROM storage_pool_members ORDER BY pool, node_id", []),
  ]);
  return pools.rows.map((r) => {
    const name = String(r[0]);
    return {
      name,
      driver: String(r[1]) as PoolDriver,
      description: String(r[2]),
      config: JSON.parse(String(r[3])) as Record<string, string>,
      state: String(r[4]) as PoolRow["state"],
      members: new Map(members.rows.filter((m) => String(m[0]) === name).map((m) => [String(m[1]), JSON.parse(String(m[2])) as Record<string, string>])),
    };
  });
}

export async function findPool(db: Pick<Database, "query">, name: string): Promise<PoolRow | undefined> {
  return (await listPools(db)).find((p) => p.name === name);
}

export async function requirePool(db: Pick<Database, "query">, name: string): Promise<PoolRow> {
  const p = await findPool(db, name);
  if (!p) throw ApiError.notFound(`Storage pool "${name}" not found`);
  return p;
}

/**
 * What a member's agent is told (EnsurePool). The `default` pool is the agent's own
 * default `dir` pool; another `dir` pool without a member-specific source lives under
 * the agent's directory.
 */
export function poolSpecFor(pool: PoolRow, nodeId: string): PoolSpec {
  const source = pool.driver === "shared" ? pool.config.source : pool.members.get(nodeId)?.source ?? "";
  return { name: pool.name, driver: pool.driver, source };
}

/** Tells a member's agent about the pool (idempotent) before it is used there. */
export async function ensurePool(agent: Pick<MemberClient, "ensurePool">, pool: PoolRow, nodeId: string): Promise<void> {
  // Every agent has its own default `dir` pool.
  if (pool.name === "default" && pool.driver === "dir" && !pool.members.get(nodeId)?.source) return;
  await agent.ensurePool(poolSpecFor(pool, nodeId));
}

/** The name an agent knows a pool by ("" = its default pool). */
export function agentPoolName(pool: string): string {
  return pool === "default" ? "" : pool;
}

/** Records a member's effective config (what its agent reported). */
export function memberConfigStatement(pool: string, nodeId: string, config: Record<string, string>): ExecStatement {
  return { sql: "INSERT OR REPLACE INTO storage_pool_members (pool, node_id, config) VALUES (?, ?, ?)", params: [pool, nodeId, JSON.stringify(config)] };
}

/** The root disk's pool among an instance's expanded devices ("default" when it has none). */
export function rootDiskPool(devices: Record<string, Record<string, string>>): string {
  for (const d of Object.values(devices)) {
    if (d.type === "disk" && d.path === "/" && d.pool) return d.pool;
  }
  return "default";
}
