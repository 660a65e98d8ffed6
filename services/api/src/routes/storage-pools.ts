// /1.0/storage-pools (`lxc storage create|list|show|set|edit|delete`): the cluster's
// pools (storage/pools.ts). As in an LXD cluster, a `dir` pool may first be defined
// per member (`--target M`, member-specific `source`; the pool is PENDING), then
// created cluster-wide without `--target`; members never defined get a directory of
// their agent. A `shared` pool is created in one step with the path every member
// mounts. Creation asks every reachable member's agent to open the pool first
// (EnsurePool): a member that cannot refuses the whole creation, nothing is recorded.
// `?target=` names a member (its member-specific config is shown) or this gateway.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import { getMember, listMembers, type MemberRow } from "../cluster/members.ts";
import { lifecycleEvent, publishStatements, requestor } from "../events/events.ts";
import { agentMessage, AgentClients } from "../instances/agents.ts";
import { liveMembers } from "../instances/placement.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import {
  createPoolSchema,
  isPoolDriver,
  listPools,
  memberConfigStatement,
  poolSpecFor,
  findPool,
  validatePoolConfig,
  validatePoolName,
  type PoolRow,
} from "../storage/pools.ts";
import { badBody, checkIfMatch, etagOf, queryParam, recursive } from "./objects.ts";

const poolEtag = (v: { name: string; driver: string; description: string; config: Record<string, string> }) => etagOf([v.name, v.driver, v.description, v.config]);
const updateSchema = z.object({ description: z.string().optional(), config: z.record(z.string(), z.string()).nullish() });

export function storagePoolRoutes(ctx: GatewayContext) {
  const agents = new AgentClients(ctx.tls);
  /** `?target=`: "" (cluster view), this gateway's name, or a member (its row). */
  async function target(req: FastifyRequest): Promise<{ name: string; member?: MemberRow }> {
    const t = queryParam(req, "target");
    if (t === "" || t === ctx.serverName) return { name: t };
    const member = await getMember(ctx.db, t);
    if (!member) throw ApiError.notFound("Cluster member not found");
    return { name: t, member };
  }

  /** The pool, or LXD's 404 for an unknown one. */
  async function existingPool(name: string): Promise<PoolRow> {
    const p = await findPool(ctx.db, name);
    if (!p) throw ApiError.notFound("Storage pool not found");
    return p;
  }

  async function usedBy(pool: string): Promise<string[]> {
    const [profiles, instances] = await Promise.all([
      ctx.db.query("SELECT project, name, devices FROM profiles ORDER BY project, name", []),
      ctx.db.query("SELECT project, name FROM instances WHERE pool = ? ORDER BY project, name", [pool]),
    ]);
    const suffix = (project: string) => (project === "default" ? "" : `?project=${encodeURIComponent(project)}`);
    const out: string[] = [];
    for (const [project, name] of instances.rows) out.push(`/1.0/instances/${encodeURIComponent(String(name))}${suffix(String(project))}`);
    for (const [project, name, devices] of profiles.rows) {
      const devs = JSON.parse(String(devices)) as Record<string, Record<string, string>>;
      if (Object.values(devs).some((d) => d.type === "disk" && d.pool === pool)) out.push(`/1.0/profiles/${encodeURIComponent(String(name))}${suffix(String(project))}`);
    }
    return out;
  }

  async function poolView(p: PoolRow, t: { name: string; member?: MemberRow }, members: MemberRow[]) {
    const config: Record<string, string> = { ...p.config };
    if (t.member) Object.assign(config, p.driver === "dir" ? { source: "", ...(p.members.get(t.member.nodeId) ?? {}) } : {});
    else if (t.name !== "" && p.driver === "dir") config.source = "";
    const locations = p.state === "CREATED" ? members.map((m) => m.name) : members.filter((m) => p.members.has(m.nodeId)).map((m) => m.name);
    return {
      name: p.name,
      driver: p.driver,
      description: p.description,
      config,
      used_by: await usedBy(p.name),
      status: p.state === "CREATED" ? "Created" : "Pending",
      locations: locations.length ? locations : [ctx.serverName],
    };
  }

  const event = (req: FastifyRequest, action: string, name: string, location: string): ExecStatement[] =>
    publishStatements(lifecycleEvent({ action, source: `/1.0/storage-pools/${name}`, location, requestor: requestor(req) }));

  /** Opens the pool on every reachable member; returns each one's effective member config. */
  async function ensureOnMembers(p: PoolRow): Promise<ExecStatement[]> {
    const live = await liveMembers(ctx.db);
    const statements: ExecStatement[] = [];
    await Promise.all(
      live
        .filter((m) => m.status !== "Offline")
        .map(async (m) => {
          let spec;
          try {
            spec = await agents.get(m.row.address).ensurePool(poolSpecFor(p, m.row.nodeId));
          } catch (e) {
            throw ApiError.badRequest(`Failed to create storage pool "${p.name}" on member "${m.row.name}": ${agentMessage(e)}`);
          }
          if (p.driver === "dir") statements.push(memberConfigStatement(p.name, m.row.nodeId, { source: spec.source }));
        }),
    );
    return statements;
  }

  return async function (app: FastifyInstance) {
    app.addHook("onClose", async () => agents.close());
    app.get("/1.0/storage-pools", async (req, reply) => {
      const t = await target(req);
      const pools = await listPools(ctx.db);
      if (!recursive(req)) return sendSync(reply, pools.map((p) => `/1.0/storage-pools/${encodeURIComponent(p.name)}`));
      const members = await listMembers(ctx.db);
      return sendSync(reply, await Promise.all(pools.map((p) => poolView(p, t, members))));
    });

    app.get<{ Params: { name: string } }>("/1.0/storage-pools/:name", async (req, reply) => {
      const t = await target(req);
      const p = await existingPool(req.params.name);
      const v = await poolView(p, t, await listMembers(ctx.db));
      return sendSync(reply, v, { etag: poolEtag(v) });
    });

    app.post("/1.0/storage-pools", async (req, reply) => {
      const parsed = createPoolSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const b = parsed.data;
      validatePoolName(b.name);
      if (!isPoolDriver(b.driver)) throw ApiError.badRequest(`Storage pool driver "${b.driver}" is not supported (dir, shared)`);
      const config = b.config ?? {};
      const t = await target(req);
      const existing = await findPool(ctx.db, b.name);
      const location = `/1.0/storage-pools/${encodeURIComponent(b.name)}`;
      if (t.member) {
        // A member-specific definition: the pool stays PENDING until created cluster-wide.
        if (b.driver === "shared") throw ApiError.badRequest("A shared storage pool is the same on every member: create it without --target");
        validatePoolConfig(b.driver, config, "member");
        if (existing && existing.state === "CREATED") throw new ApiError(409, "The storage pool already defined on this member");
        if (existing && existing.driver !== b.driver) throw ApiError.badRequest(`Storage pool "${b.name}" is pending with driver "${existing.driver}"`);
        if (existing?.members.has(t.member.nodeId)) throw new ApiError(409, "The storage pool already defined on this member");
        await ctx.db.exec([
          ...(existing ? [] : [{ sql: "INSERT INTO storage_pools (name, driver, description, config, state) VALUES (?, ?, ?, '{}', 'PENDING')", params: [b.name, b.driver, b.description ?? ""] }]),
          memberConfigStatement(b.name, t.member.nodeId, config),
        ]);
        return sendSync(reply, null, { status: 201, location });
      }
      if (t.name !== "") throw ApiError.badRequest("A storage pool is defined per cluster member: --target names a member");
      if (existing && existing.state === "CREATED") throw new ApiError(409, `Storage pool "${b.name}" already exists`);
      if (existing && existing.driver !== b.driver) throw ApiError.badRequest(`Storage pool "${b.name}" is pending with driver "${existing.driver}"`);
      validatePoolConfig(b.driver, config, "cluster");
      const pool: PoolRow = { name: b.name, driver: b.driver, description: b.description ?? existing?.description ?? "", config, state: "CREATED", members: existing?.members ?? new Map() };
      const memberConfigs = await ensureOnMembers(pool);
      await ctx.db.exec([
        existing
          ? { sql: "UPDATE storage_pools SET description = ?, config = ?, state = 'CREATED' WHERE name = ? AND state = 'PENDING'", params: [pool.description, JSON.stringify(config), b.name], expectChanges: 1 }
          : { sql: "INSERT INTO storage_pools (name, driver, description, config, state) VALUES (?, ?, ?, ?, 'CREATED')", params: [b.name, b.driver, pool.description, JSON.stringify(config)] },
        ...memberConfigs,
        ...event(req, "storage-pool-created", b.name, ctx.serverName),
      ]);
      return sendSync(reply, null, { status: 201, location });
    });

    const update = async (req: FastifyRequest<{ Params: { name: string } }>, mode: "put" | "patch") => {
      const t = await target(req);
      const p = await existingPool(req.params.name);
      const current = await poolView(p, t, await listMembers(ctx.db));
      checkIfMatch(req, poolEtag(current));
      const parsed = updateSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const wanted = mode === "patch" ? { ...current.config, ...(parsed.data.config ?? {}) } : (parsed.data.config ?? {});
      // Sources cannot move under existing instances: every key must stay as it is.
      for (const k of new Set([...Object.keys(wanted), ...Object.keys(current.config)])) {
        if ((wanted[k] ?? "") !== (current.config[k] ?? "")) {
          validatePoolConfig(p.driver, { [k]: wanted[k] ?? "" }, t.member ? "member" : "cluster");
          throw ApiError.badRequest(`Config key "${k}" of storage pool "${p.name}" cannot be changed`);
        }
      }
      const description = parsed.data.description ?? (mode === "patch" ? p.description : "");
      await ctx.db.exec([{ sql: "UPDATE storage_pools SET description = ? WHERE name = ?", params: [description, p.name], expectChanges: 1 }, ...event(req, "storage-pool-updated", p.name, ctx.serverName)]);
      return null;
    };
    app.put<{ Params: { name: string } }>("/1.0/storage-pools/:name", async (req, reply) => sendSync(reply, await update(req, "put")));
    app.patch<{ Params: { name: string } }>("/1.0/storage-pools/:name", async (req, reply) => sendSync(reply, await update(req, "patch")));

    app.delete<{ Params: { name: string } }>("/1.0/storage-pools/:name", async (req, reply) => {
      const p = await existingPool(req.params.name);
      if ((await usedBy(p.name)).length) throw ApiError.badRequest("The storage pool is currently in use");
      // The members' agents keep their registration; an unused one is re-pointed if the
      // name is created again.
      await ctx.db.exec([
        { sql: "DELETE FROM storage_pool_members WHERE pool = ?", params: [p.name] },
        { sql: "DELETE FROM storage_pools WHERE name = ?", params: [p.name], expectChanges: 1 },
        ...event(req, "storage-pool-deleted", p.name, ctx.serverName),
      ]);
      return sendSync(reply, null);
    });
  };
}
