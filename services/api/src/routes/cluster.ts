// /1.0/cluster and /1.0/cluster/members: the cluster object, join tokens
// (`lxc cluster add`), member list/show/set/edit/rename/remove and member state.
// Members live in the replicated `members` table; roles come from the database's
// Raft configuration; status from heartbeats (see cluster/coordinator.ts).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import { Role } from "../../../../proto/gen/raft.ts";
import { readStoredConfig } from "../config.ts";
import { lifecycleEvent, publishStatements, requestor } from "../events/events.ts";
import { checkMemberName, createJoinToken } from "../cluster/join-tokens.ts";
import { CUSTOM_ROLES, databaseRole, getMember, isOffline, listMembers, memberRoles, memberView, type MemberRow } from "../cluster/members.ts";
import { checkClusterCertificate, rotationStatements } from "../cluster/certificate-rotation.ts";
import { handOver } from "../cluster/handover.ts";
import { clusterSettings } from "../cluster/settings.ts";
import { sendAsync, view } from "../operations/store.ts";
import { stateOf } from "../placement/scriptlet-run.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { badBody, checkIfMatch, etagOf, ifMatch, preconditionAs412, recursive, sortedJson } from "./objects.ts";

/** What a joining member must supply (LXD's member_config): the default pool's source. */
export const MEMBER_CONFIG = [{ entity: "storage-pool", name: "default", key: "source", value: "", description: '"source" property for storage pool "default"' }];

const tokenSchema = z.object({ server_name: z.string() });
const certificateSchema = z.object({ cluster_certificate: z.string().min(1), cluster_certificate_key: z.string().min(1) });
const renameSchema = z.object({ server_name: z.string() });
const putSchema = z.object({
  roles: z.array(z.string()).nullish(),
  failure_domain: z.string().optional(),
  description: z.string().optional(),
  config: z.record(z.string(), z.string()).nullish(),
  groups: z.array(z.string()).nullish(),
});

const SCHEDULER_VALUES = ["all", "group", "manual"];

/** Member config keys: scheduler.instance and user.*; LXD's words for anything else. */
function validateMemberConfig(config: Record<string, string>): void {
  for (const [k, v] of Object.entries(config)) {
    if (k.startsWith("user.")) continue;
    if (k !== "scheduler.instance") throw ApiError.badRequest(`Invalid cluster configuration key "${k}"`);
    if (!SCHEDULER_VALUES.includes(v)) throw ApiError.badRequest(`Invalid cluster configuration key "${k}" value: "${v}" is not one of ${SCHEDULER_VALUES.join(", ")}`);
  }
}

function memberEtag(m: MemberRow, roles: string[]): string {
  return etagOf([roles, m.failureDomain, m.description, m.config, m.groups]);
}

/** Precondition: the member row is still what `m` was read as. */
function unchanged(m: MemberRow) {
  return {
    sql: "SELECT name || char(10) || description || char(10) || failure_domain || char(10) || config || char(10) || roles FROM members WHERE node_id = ?",
    params: [m.nodeId],
    expectValue: [m.name, m.description, m.failureDomain, sortedJson(m.config), JSON.stringify(m.roles)].join("\n"),
    message: "the cluster member changed meanwhile",
  };
}

export function clusterRoutes(ctx: GatewayContext) {
  const event = (action: string, name: string, req: FastifyRequest, context?: Record<string, unknown>): ExecStatement[] =>
    publishStatements(lifecycleEvent({ action, source: `/1.0/cluster/members/${name}`, location: ctx.serverName, requestor: requestor(req), context }));

  /** The member list from the gateway's read cache (writes re-read the database). */
  const cachedMembers = () => ctx.cache.get("members", ["members", "cluster_group_members"], () => listMembers(ctx.db));

  async function findMember(name: string): Promise<MemberRow> {
    const m = await getMember(ctx.db, name);
    if (!m) throw ApiError.notFound("Cluster member not found");
    return m;
  }

  async function update(req: FastifyRequest<{ Params: { name: string } }>, mode: "put" | "patch"): Promise<void> {
    const m = await findMember(req.params.name);
    const status = await ctx.db.status();
    const currentRoles = memberRoles(m, status);
    checkIfMatch(req, memberEtag(m, currentRoles));
    const parsed = putSchema.safeParse(req.body ?? null);
    if (!parsed.success) throw badBody(parsed.error);
    const body = parsed.data;

    // Roles: the database roles are the rebalancer's; the client echoes them back, and
    // anything else about them is refused in LXD's words. Custom roles are stored.
    const requested = body.roles ?? currentRoles;
    const dbRoles = (rs: string[]) => rs.filter((r) => r.startsWith("database"));
    for (const r of dbRoles(requested)) if (!currentRoles.includes(r)) throw ApiError.badRequest(`The "${r}" role cannot be added at this time`);
    for (const r of dbRoles(currentRoles)) if (!requested.includes(r)) throw ApiError.badRequest(`The "${r}" role cannot be dropped at this time`);
    const custom = [...new Set(requested.filter((r) => !r.startsWith("database")))];
    for (const r of custom) if (!(CUSTOM_ROLES as readonly string[]).includes(r)) throw ApiError.badRequest(`Invalid cluster role "${r}"`);

    const config = mode === "put" ? { ...(body.config ?? {}) } : { ...m.config, ...(body.config ?? {}) };
    for (const [k, v] of Object.entries(config)) if (v === "") delete config[k];
    validateMemberConfig(config);
    const failureDomain = body.failure_domain ?? m.failureDomain;
    if (failureDomain === "") throw ApiError.badRequest("Failure domain name can't be empty");
    const description = body.description ?? (mode === "put" ? "" : m.description);
    const groups = [...new Set(body.groups ?? m.groups)];
    if (groups.length === 0) throw ApiError.badRequest("Cluster members need to belong to at least one group");
    const known = new Set((await ctx.db.query("SELECT name FROM cluster_groups")).rows.map((r) => String(r[0])));
    for (const g of groups) if (!known.has(g)) throw ApiError.notFound(`Cluster group "${g}" doesn't exist`);

    const statements: ExecStatement[] = [
      {
        sql: "UPDATE members SET description = ?, failure_domain = ?, config = ?, roles = ? WHERE node_id = ?",
        params: [description, failureDomain, sortedJson(config), JSON.stringify(custom), m.nodeId],
        expectChanges: 1,
      },
      { sql: "DELETE FROM cluster_group_members WHERE node_id = ?", params: [m.nodeId] },
      ...groups.map((g) => ({ sql: "INSERT INTO cluster_group_members (group_name, node_id) VALUES (?, ?)", params: [g, m.nodeId] })),
      ...event("cluster-member-updated", m.name, req),
    ];
    try {
      await ctx.db.exec(statements, { preconditions: ifMatch(req) !== undefined ? [unchanged(m)] : [] });
    } catch (e) {
      preconditionAs412(e, "cluster member");
    }
  }

  return async function (app: FastifyInstance) {
    app.get("/1.0/cluster", async (_req, reply) => {
      const body = { server_name: ctx.serverName, enabled: true, member_config: MEMBER_CONFIG };
      return sendSync(reply, body, { etag: etagOf(body) });
    });

    app.put("/1.0/cluster", async (req) => {
      const body = z.object({ enabled: z.boolean().optional(), server_name: z.string().optional() }).safeParse(req.body ?? null);
      if (!body.success) throw badBody(body.error);
      if (body.data.enabled === false) throw ApiError.badRequest("Disabling clustering is not supported: remove members with `lxc cluster remove`");
      throw ApiError.badRequest("This server is already clustered");
    });

    // `lxc cluster update-certificate CERT KEY`: every member and gateway trusts the new
    // certificate at once and presents it a few seconds later (cluster/certificate-rotation.ts).
    app.put("/1.0/cluster/certificate", async (req, reply) => {
      const parsed = certificateSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const { cluster_certificate: cert, cluster_certificate_key: key } = parsed.data;
      const host = ctx.httpsAddress().replace(/:\d+$/, "");
      checkClusterCertificate(cert, key, /^\d+\.\d+\.\d+\.\d+$/.test(host) && host !== "0.0.0.0" ? [host] : []);
      await ctx.db.exec([
        ...rotationStatements(cert, key, ctx.cert),
        ...publishStatements(lifecycleEvent({ action: "cluster-certificate-updated", source: "/1.0/cluster/certificate", location: ctx.serverName, requestor: requestor(req) })),
      ]);
      return sendSync(reply, {});
    });

    app.get("/1.0/cluster/members", async (req, reply) => {
      if (!recursive(req)) return sendSync(reply, (await cachedMembers()).map((m) => `/1.0/cluster/members/${encodeURIComponent(m.name)}`));
      // The status is read every time: role changes are in the Raft configuration, which
      // the cache's Watch stream does not report. Asked for at once, beside the rows.
      const [members, status, stored] = await Promise.all([cachedMembers(), ctx.db.status(), ctx.cache.get("config", ["config"], () => readStoredConfig(ctx.db))]);
      const { offlineThresholdMs } = clusterSettings(stored);
      const now = Date.now();
      return sendSync(reply, members.map((m) => memberView(m, status, now, offlineThresholdMs)));
    });

    // A join token for a new member (LXD's ClusterJoinToken operation).
    app.post("/1.0/cluster/members", async (req, reply) => {
      const parsed = tokenSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const name = parsed.data.server_name;
      checkMemberName(name);
      const members = await listMembers(ctx.db, { pending: true });
      if (members.some((m) => m.name === name || m.nodeId === name)) throw new ApiError(409, `The cluster already has a member with name: ${name}`);
      const settings = clusterSettings(await readStoredConfig(ctx.db));
      const op = await createJoinToken(ctx.db, {
        name,
        addresses: [ctx.httpsAddress()],
        fingerprint: ctx.certFingerprint,
        location: ctx.serverName,
        expiryMs: settings.joinTokenExpiryMs,
        extra: publishStatements(lifecycleEvent({ action: "cluster-token-created", source: "/1.0/cluster/members", location: ctx.serverName, requestor: requestor(req), project: "default" })),
      });
      return sendAsync(reply, view(op));
    });

    app.get<{ Params: { name: string } }>("/1.0/cluster/members/:name", async (req, reply) => {
      const m = await findMember(req.params.name);
      const [status, stored] = await Promise.all([ctx.db.status(), readStoredConfig(ctx.db)]);
      const v = memberView(m, status, Date.now(), clusterSettings(stored).offlineThresholdMs);
      return sendSync(reply, v, { etag: memberEtag(m, v.roles) });
    });

    app.put<{ Params: { name: string } }>("/1.0/cluster/members/:name", async (req, reply) => {
      await update(req, "put");
      return sendSync(reply, {});
    });
    app.patch<{ Params: { name: string } }>("/1.0/cluster/members/:name", async (req, reply) => {
      await update(req, "patch");
      return sendSync(reply, {});
    });

    // Rename: the name only; the database node id stays.
    app.post<{ Params: { name: string } }>("/1.0/cluster/members/:name", async (req, reply) => {
      const parsed = renameSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const m = await findMember(req.params.name);
      const to = parsed.data.server_name;
      checkMemberName(to);
      if (to === m.name) return sendSync(reply, {});
      try {
        await ctx.db.exec(
          [{ sql: "UPDATE members SET name = ? WHERE node_id = ?", params: [to, m.nodeId], expectChanges: 1 }, ...publishStatements(lifecycleEvent({ action: "cluster-member-renamed", source: `/1.0/cluster/members/${to}`, location: ctx.serverName, requestor: requestor(req), context: { old_name: m.name } }))],
          { preconditions: [{ sql: "SELECT 1 FROM members WHERE name = ? OR (node_id = ? AND node_id != ?)", params: [to, to, m.nodeId], expectRows: 0, message: "name taken" }] },
        );
      } catch (e) {
        try {
          preconditionAs412(e, "cluster member");
        } catch (mapped) {
          if (mapped instanceof ApiError && mapped.status === 412) throw new ApiError(409, `The cluster already has a member with name: ${to}`);
          throw mapped;
        }
      }
      return sendSync(reply, {}, { location: `/1.0/cluster/members/${encodeURIComponent(to)}` });
    });

    app.delete<{ Params: { name: string } }>("/1.0/cluster/members/:name", async (req, reply) => {
      const m = await findMember(req.params.name);
      const force = ["1", "true"].includes(String((req.query as Record<string, unknown>)?.force ?? ""));
      const members = await listMembers(ctx.db, { pending: true });
      if (members.length === 1) throw ApiError.badRequest("The last member of a cluster cannot be removed");
      // LXD's rule and words: a member holding instances stays unless forced (then the
      // cluster forgets those instances; their files remain on that host).
      const held = await ctx.db.query("SELECT name FROM instances WHERE node_id = ? ORDER BY project, name", [m.nodeId]);
      if (held.rows.length && !force) throw ApiError.badRequest(`Node still has the following containers: ${held.rows.map((r) => String(r[0])).join(", ")}`);
      const status = await ctx.db.status();
      const role = databaseRole(status, m.nodeId);
      if (role === "voter") {
        const voters = status.nodes.filter((n) => n.role === Role.VOTER);
        if (voters.length === 1) throw ApiError.badRequest(`${m.name} is the last database voter: it cannot be removed`);
      }
      const stored = await readStoredConfig(ctx.db);
      const offline = isOffline(m, Date.now(), clusterSettings(stored).offlineThresholdMs);
      // Out of the Raft configuration first, its role handed to a replacement before
      // it steps down (one change at a time), then the rows.
      if (status.nodes.some((n) => n.id === m.nodeId)) {
        if (role !== "spare" && !(await handOver(ctx.db, m.nodeId, Date.now() + 20_000))) {
          throw new ApiError(503, `Could not hand ${m.name}'s database role over to another member; try again`);
        }
        await ctx.db.removeNode(m.nodeId);
      }
      await ctx.db.exec([
        { sql: "DELETE FROM members WHERE node_id = ?", params: [m.nodeId] },
        { sql: "DELETE FROM cluster_group_members WHERE node_id = ?", params: [m.nodeId] },
        { sql: "DELETE FROM member_config WHERE node_id = ?", params: [m.nodeId] },
        { sql: "DELETE FROM instances WHERE node_id = ?", params: [m.nodeId] },
        { sql: "DELETE FROM image_members WHERE node_id = ?", params: [m.nodeId] },
        ...event("cluster-member-removed", m.name, req),
      ]);
      // Tell the member to stop (best effort: it may be offline, or already gone with --force).
      if (!offline || !force) await ctx.members.leave(m.address, 2_000).catch(() => undefined);
      return sendSync(reply, {});
    });

    app.get<{ Params: { name: string } }>("/1.0/cluster/members/:name/state", async (req, reply) => {
      const m = await findMember(req.params.name);
      let s;
      try {
        s = await ctx.members.state(m.address, 3_000);
      } catch {
        throw new ApiError(503, `Cluster member "${m.name}" is not reachable`);
      }
      return sendSync(reply, stateOf(s));
    });
  };
}
