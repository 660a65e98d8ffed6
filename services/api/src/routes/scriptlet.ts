// POST /internal/placement/test: runs a placement scriptlet (the one sent, or the
// configured `instances.placement.scriptlet`) against the live cluster's members for
// a described instance, and answers with the decision and the logs. Nothing is
// placed; the logs are published as `logging` events as a real run's would be.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { runScriptlet } from "../placement/scriptlet-run.ts";
import { validateScriptlet } from "../../../placement/src/scriptlet/index.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { badBody } from "./objects.ts";

const bodySchema = z.object({
  scriptlet: z.string().optional(),
  reason: z.enum(["new", "evacuation", "relocation"]).default("new"),
  target: z.string().optional(),
  project: z.string().default("default"),
  instance: z
    .object({
      name: z.string().default("c1"),
      type: z.enum(["container", "virtual-machine"]).default("container"),
      config: z.record(z.string(), z.string()).default({}),
      devices: z.record(z.string(), z.record(z.string(), z.string())).default({}),
      profiles: z.array(z.string()).default(["default"]),
    })
    .default({ name: "c1", type: "container", config: {}, devices: {}, profiles: ["default"] }),
});

export function scriptletRoutes(ctx: GatewayContext) {
  return async function (app: FastifyInstance) {
    app.post("/internal/placement/test", async (req, reply) => {
      const parsed = bodySchema.safeParse(req.body ?? {});
      if (!parsed.success) throw badBody(parsed.error);
      const b = parsed.data;
      if (b.scriptlet !== undefined) {
        const v = validateScriptlet(b.scriptlet);
        if (!v.ok) throw ApiError.badRequest(`Invalid placement scriptlet: ${v.error}`);
      }
      const run = await runScriptlet(ctx.db, ctx.members, {
        source: b.scriptlet,
        location: ctx.serverName,
        request: { instance: { ...b.instance, project: b.project }, reason: b.reason, project: b.project, ...(b.target ? { target: b.target } : {}) },
      });
      return sendSync(reply, { target: run.target ?? "", error: run.error ?? "", logs: run.logs, candidates: run.candidates });
    });
  };
}
