// POST /1.0/cluster/members/<name>/state: `lxc cluster evacuate|restore NAME --force`
// (5.0.2 sends {"action": "evacuate"|"restore", "mode": ""}). Errors come back before
// anything changes; otherwise a task operation ("Evacuating cluster member" /
// "Restoring cluster member") is recorded with its plan; the coordinator executes it.
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { planStatements, preparePlan, type EvacuationAction } from "../evacuation/evacuate.ts";
import { AgentClients } from "../instances/agents.ts";
import { recordTask } from "../operations/tasks.ts";
import { sendAsync, view } from "../operations/store.ts";
import { ApiError } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { badBody } from "./objects.ts";

const stateSchema = z.object({ action: z.string(), mode: z.string().nullish() }).passthrough();

export function clusterEvacuationRoutes(ctx: GatewayContext) {
  const agents = new AgentClients(ctx.tls);
  const log = (line: string) => process.stderr.write(`shoal-api: ${line}\n`);
  return async function (app: FastifyInstance) {
    app.addHook("onClose", async () => agents.close());

    app.post("/1.0/cluster/members/:name/state", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const parsed = stateSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const action = parsed.data.action;
      if (action !== "evacuate" && action !== "restore") throw ApiError.badRequest(`Unknown cluster member state action "${action}" (evacuate or restore)`);
      const plan = await preparePlan(ctx.db, agents, req.params.name, action as EvacuationAction, parsed.data.mode ?? "", { members: ctx.members, location: ctx.serverName });
      const id = randomUUID();
      // Recorded with the plan and the member's new state in one write; the coordinator
      // (evacuation/runner.ts) executes it, and its successor resumes it after a crash.
      const op = await recordTask(ctx.db, {
        id,
        description: action === "evacuate" ? "Evacuating cluster member" : "Restoring cluster member",
        project: "default",
        location: plan.member.row.name,
        metadata: { evacuation_progress: `0/${plan.steps.length}: waiting for the coordinator` },
        statements: planStatements(id, plan),
        log,
      }).catch((e: unknown) => {
        // The member's state changed meanwhile (a concurrent evacuate or restore).
        if (/expect|changes|precondition/i.test(String(e))) throw ApiError.badRequest(action === "evacuate" ? "Cluster member is already evacuated" : "Cluster member is already restored");
        throw e;
      });
      return sendAsync(reply, view(op));
    });
  };
}
