// /1.0/cluster/groups: cluster groups (`lxc cluster group …`), in the replicated
// `cluster_groups` and `cluster_group_members` tables. Every member belongs to at
// least one group; `default` always exists and holds every member that joins.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import { lifecycleEvent, publishStatements, requestor } from "../events/events.ts";
import { listMembers, type MemberRow } from "../cluster/members.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { badBody, checkIfMatch, etagOf, ifMatch, preconditionAs412, recursive } from "./objects.ts";

interface ClusterGroup {
  name: string;
  description: string;
  members: string[];
}

const postSchema = z.object({ name: z.string(), description: z.string().optional(), members: z.array(z.string()).nullish() });
const putSchema = z.object({ description: z.string().optional(), members: z.array(z.string()).nullish() });
const renameSchema = z.object({ name: z.string() });

/** LXD's cluster group name rules. */
function validateGroupName(name: string): void {
  if (name === "") throw ApiError.badRequest("No name provided");
  if (name.includes("/")) throw ApiError.badRequest("Cluster group names may not contain slashes");
  if (/\s/.test(name)) throw ApiError.badRequest("Cluster group names may not contain spaces");
  if (name.includes("_")) throw ApiError.badRequest("Cluster group names may not contain underscores");
  if (name.includes("'") || name.includes('"')) throw ApiError.badRequest("Cluster group names may not contain quotes");
  if (name === "*") throw ApiError.badRequest("Reserved cluster group name");
  if (name === "." || name === "..") throw ApiError.badRequest(`Invalid cluster group name "${name}"`);
  if (name.length > 63) throw ApiError.badRequest("Cluster group name is too long (at most 63 characters)");
}

const groupEtag = (g: ClusterGroup) => etagOf([g.description, g.members]);

/** Precondition: the group's description and members are what `g` was read as. */
function unchanged(g: ClusterGroup, byName: Map<string, MemberRow>) {
  const ids = g.members.map((n) => byName.get(n)?.nodeId ?? n).sort();
  return {
    sql: "SELECT description || char(10) || coalesce((SELECT group_concat(node_id, ',') FROM (SELECT node_id FROM cluster_group_members WHERE group_name = ? ORDER BY node_id)), '') FROM cluster_groups WHERE name = ?",
    params: [g.name, g.name],
    expectValue: `${g.description}\n${ids.join(",")}`,
    message: "the cluster group changed meanwhile",
  };
}

export function clusterGroupRoutes(ctx: GatewayContext) {
  const event = (action: string, name: string, req: FastifyRequest, context?: Record<string, unknown>): ExecStatement[] =>
    publishStatements(lifecycleEvent({ action, source: `/1.0/cluster/groups/${name}`, location: ctx.serverName, requestor: requestor(req), context }));

  async function load(): Promise<{ groups: ClusterGroup[]; members: MemberRow[] }> {
    const [rows, members] = await Promise.all([ctx.db.query("SELECT name, description FROM cluster_groups ORDER BY name"), listMembers(ctx.db, { pending: true })]);
    const groups = rows.rows.map(([n, d]) => ({ name: String(n), description: String(d), members: members.filter((m) => m.groups.includes(String(n))).map((m) => m.name) }));
    return { groups, members };
  }

  async function find(name: string) {
    const all = await load();
    const group = all.groups.find((g) => g.name === name);
    if (!group) throw ApiError.notFound("Cluster group not found");
    return { ...all, group };
  }

  /** The membership statements that make `group` hold exactly `names` (refusing to orphan a member). */
  function membership(group: string, names: string[], members: MemberRow[], strict: boolean): ExecStatement[] {
    const byName = new Map(members.map((m) => [m.name, m]));
    for (const n of names) if (!byName.has(n)) throw ApiError.badRequest(`Cluster member "${n}" doesn't exist`);
    const statements: ExecStatement[] = [];
    for (const m of members) {
      const wanted = names.includes(m.name);
      const has = m.groups.includes(group);
      if (wanted && !has) statements.push({ sql: "INSERT INTO cluster_group_members (group_name, node_id) VALUES (?, ?)", params: [group, m.nodeId] });
      if (!wanted && has) {
        if (m.groups.length === 1) {
          if (strict) throw ApiError.badRequest(`Cannot remove ${m.name} from group as member needs to belong to at least one group`);
          continue; // LXD's PUT keeps a member that has no other group
        }
        statements.push({ sql: "DELETE FROM cluster_group_members WHERE group_name = ? AND node_id = ?", params: [group, m.nodeId] });
      }
    }
    return statements;
  }

  async function update(req: FastifyRequest<{ Params: { name: string } }>, mode: "put" | "patch"): Promise<void> {
    const { group, members } = await find(req.params.name);
    checkIfMatch(req, groupEtag(group));
    const parsed = putSchema.safeParse(req.body ?? null);
    if (!parsed.success) throw badBody(parsed.error);
    const description = parsed.data.description ?? (mode === "put" ? "" : group.description);
    const names = parsed.data.members ?? group.members;
    const statements = [
      { sql: "UPDATE cluster_groups SET description = ? WHERE name = ?", params: [description, group.name], expectChanges: 1 },
      ...membership(group.name, names, members, mode === "patch"),
      ...event("cluster-group-updated", group.name, req),
    ];
    try {
      await ctx.db.exec(statements, { preconditions: ifMatch(req) !== undefined ? [unchanged(group, new Map(members.map((m) => [m.name, m])))] : [] });
    } catch (e) {
      preconditionAs412(e, "cluster group");
    }
  }

  return async function (app: FastifyInstance) {
    app.get("/1.0/cluster/groups", async (req, reply) => {
      const rec = recursive(req);
      const { groups } = await load();
      return sendSync(reply, rec ? groups : groups.map((g) => `/1.0/cluster/groups/${encodeURIComponent(g.name)}`));
    });

    app.post("/1.0/cluster/groups", async (req, reply) => {
      const parsed = postSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const { name, description = "" } = parsed.data;
      validateGroupName(name);
      const { groups, members } = await load();
      if (groups.some((g) => g.name === name)) throw new ApiError(409, "This cluster group already exists");
      const statements: ExecStatement[] = [
        { sql: "INSERT INTO cluster_groups (name, description) VALUES (?, ?)", params: [name, description] },
        ...membership(name, parsed.data.members ?? [], members, false),
        ...event("cluster-group-created", name, req),
      ];
      try {
        await ctx.db.exec(statements, { preconditions: [{ sql: "SELECT 1 FROM cluster_groups WHERE name = ?", params: [name], expectRows: 0, message: "exists" }] });
      } catch (e) {
        try {
          preconditionAs412(e, "cluster group");
        } catch (mapped) {
          if (mapped instanceof ApiError && mapped.status === 412) throw new ApiError(409, "This cluster group already exists");
          throw mapped;
        }
      }
      return sendSync(reply, null, { status: 201, location: `/1.0/cluster/groups/${encodeURIComponent(name)}` });
    });

    app.get<{ Params: { name: string } }>("/1.0/cluster/groups/:name", async (req, reply) => {
      const { group } = await find(req.params.name);
      return sendSync(reply, group, { etag: groupEtag(group) });
    });

    app.put<{ Params: { name: string } }>("/1.0/cluster/groups/:name", async (req, reply) => {
      await update(req, "put");
      return sendSync(reply, null);
    });
    app.patch<{ Params: { name: string } }>("/1.0/cluster/groups/:name", async (req, reply) => {
      await update(req, "patch");
      return sendSync(reply, null);
    });

    app.post<{ Params: { name: string } }>("/1.0/cluster/groups/:name", async (req, reply) => {
      const parsed = renameSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const from = req.params.name;
      const to = parsed.data.name;
      if (from === "default") throw new ApiError(403, 'The "default" group cannot be renamed');
      const { groups } = await find(from);
      validateGroupName(to);
      if (groups.some((g) => g.name === to)) throw new ApiError(409, `Name "${to}" already in use`);
      await ctx.db.exec(
        [
          { sql: "UPDATE cluster_groups SET name = ? WHERE name = ?", params: [to, from], expectChanges: 1 },
          { sql: "UPDATE cluster_group_members SET group_name = ? WHERE group_name = ?", params: [to, from] },
          ...event("cluster-group-renamed", to, req, { old_name: from }),
        ],
        { preconditions: [{ sql: "SELECT 1 FROM cluster_groups WHERE name = ?", params: [to], expectRows: 0, message: "name taken" }] },
      ).catch((e: unknown) => preconditionAs412(e, "cluster group"));
      return sendSync(reply, null, { status: 201, location: `/1.0/cluster/groups/${encodeURIComponent(to)}` });
    });

    app.delete<{ Params: { name: string } }>("/1.0/cluster/groups/:name", async (req, reply) => {
      if (req.params.name === "default") throw new ApiError(403, "The 'default' cluster group cannot be deleted");
      const { group } = await find(req.params.name);
      if (group.members.length) throw ApiError.badRequest("Only empty cluster groups can be removed");
      await ctx.db
        .exec([{ sql: "DELETE FROM cluster_groups WHERE name = ?", params: [group.name], expectChanges: 1 }, ...event("cluster-group-deleted", group.name, req)], {
          preconditions: [{ sql: "SELECT 1 FROM cluster_group_members WHERE group_name = ?", params: [group.name], expectRows: 0, message: "not empty" }],
        })
        .catch((e: unknown) => preconditionAs412(e, "cluster group"));
      return sendSync(reply, null);
    });
  };
}
