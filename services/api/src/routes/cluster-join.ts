// POST /internal/cluster/join: a new member redeems its join token. The caller is
// not trusted yet; the token's secret, bound to the member name, is its credential.
// In one replicated write the token ends (single use) and the member is recorded
// as pending; then its database node is added as a stand-by (a non-voter until it
// holds the log; the coordinator's rebalancer decides its role from there). The
// reply carries what the joiner needs to take part: the cluster certificate and
// key, and the database nodes to contact. The joiner checked our certificate
// against the token's fingerprint before sending anything.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import * as grpc from "@grpc/grpc-js";
import { DatabaseClientError } from "../../../raft/src/node/database-client.ts";
import { Role } from "../../../../proto/gen/raft.ts";
import { lifecycleEvent, publishStatements } from "../events/events.ts";
import { checkMemberName, findJoinToken, redeemStatements } from "../cluster/join-tokens.ts";
import { insertMemberStatements, listMembers, MEMBER_STATE } from "../cluster/members.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { badBody } from "./objects.ts";
import { MEMBER_CONFIG } from "./cluster.ts";

export const joinRequestSchema = z.object({
  server_name: z.string(),
  /** Where the member's services listen, "host:port". */
  address: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port"),
  architecture: z.string().min(1),
  secret: z.string().min(1),
  member_config: z.array(z.object({ entity: z.string(), name: z.string(), key: z.string(), value: z.string() })).nullish(),
});
export type JoinRequest = z.infer<typeof joinRequestSchema>;

export interface JoinReply {
  certificate: string;
  key: string;
  database_nodes: { id: string; address: string }[];
}

export function clusterJoinRoutes(ctx: GatewayContext) {
  return async function (app: FastifyInstance) {
    app.post("/internal/cluster/join", { config: { untrusted: true } }, async (req: FastifyRequest, reply) => {
      const parsed = joinRequestSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const j = parsed.data;
      checkMemberName(j.server_name);
      const token = await findJoinToken(ctx.db, j.server_name, j.secret);
      for (const c of j.member_config ?? []) {
        if (!MEMBER_CONFIG.some((k) => k.entity === c.entity && k.name === c.name && k.key === c.key)) {
          throw ApiError.badRequest(`Invalid member config: ${c.entity} "${c.name}" has no member-specific key "${c.key}"`);
        }
      }
      const members = await listMembers(ctx.db, { pending: true });
      if (members.some((m) => m.name === j.server_name || m.nodeId === j.server_name)) throw new ApiError(409, `The cluster already has a member with name: ${j.server_name}`);
      if (members.some((m) => m.address === j.address)) throw new ApiError(409, `The cluster already has a member with address: ${j.address}`);

      const redeem = redeemStatements(token);
      try {
        await ctx.db.exec(
          [
            ...redeem.statements,
            ...insertMemberStatements({ nodeId: j.server_name, name: j.server_name, address: j.address, architecture: j.architecture, failureDomain: "default", state: MEMBER_STATE.pending, heartbeat: new Date().toISOString() }),
            ...(j.member_config ?? []).map((c) => ({ sql: "INSERT INTO member_config (node_id, entity, name, key, value) VALUES (?, ?, ?, ?, ?)", params: [j.server_name, c.entity, c.name, c.key, c.value] })),
            ...publishStatements(lifecycleEvent({ action: "cluster-member-added", source: `/1.0/cluster/members/${j.server_name}`, location: ctx.serverName })),
          ],
          {
            preconditions: [
              redeem.precondition,
              { sql: "SELECT 1 FROM members WHERE name = ? OR node_id = ? OR address = ?", params: [j.server_name, j.server_name, j.address], expectRows: 0, message: "name or address taken" },
            ],
          },
        );
      } catch (e) {
        if (e instanceof DatabaseClientError && e.code === grpc.status.FAILED_PRECONDITION) {
          if (e.message.includes("taken")) throw new ApiError(409, `The cluster already has a member with name ${j.server_name} or address ${j.address}`);
          throw new ApiError(403, "No matching cluster join operation found");
        }
        throw e;
      }
      try {
        await ctx.db.addNode(j.server_name, j.address, Role.STANDBY);
      } catch (e) {
        // Undo the record so the name and address are free again; the token stays used.
        await ctx.db.exec([{ sql: "DELETE FROM members WHERE node_id = ?", params: [j.server_name] }, { sql: "DELETE FROM cluster_group_members WHERE node_id = ?", params: [j.server_name] }, { sql: "DELETE FROM member_config WHERE node_id = ?", params: [j.server_name] }]).catch(() => undefined);
        throw new ApiError(503, `Failed to add the member's database node: ${e instanceof Error ? e.message : String(e)}`);
      }
      const status = await ctx.db.status();
      const out: JoinReply = { certificate: ctx.cert, key: ctx.key, database_nodes: status.nodes.map((n) => ({ id: n.id, address: n.address })) };
      return sendSync(reply, out);
    });
  };
}
