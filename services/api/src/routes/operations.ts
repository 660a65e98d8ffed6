// /1.0/operations: list (grouped by status, as LXD), show, cancel and wait. The
// operations live in the replicated database, so every gateway answers for all.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { cancelOperation, getOperation, isFinal, listOperations, view, type Operation } from "../operations/store.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";

const listQuery = z
  .object({
    recursion: z.enum(["0", "1", "2"]).optional(),
    project: z.string().optional(),
    "all-projects": z.enum(["true", "false", "1", "0"]).optional(),
  })
  .passthrough();

const waitQuery = z.object({ timeout: z.string().regex(/^-?\d+$/, "timeout must be a whole number of seconds").optional() }).passthrough();

/** Longest a `wait` without a timeout (or `timeout=-1`) holds a request before answering with the current state. */
const MAX_WAIT_MS = 10 * 60_000;
const WAIT_POLL_MS = 100;
/** With the Watch stream live a change wakes the wait; this re-read is only a safety net. */
const WAIT_LIVE_RECHECK_MS = 1_000;

export function operationRoutes(ctx: GatewayContext) {
  return async function (app: FastifyInstance) {
    app.get("/1.0/operations", async (req, reply) => {
      const q = listQuery.safeParse(req.query);
      if (!q.success) throw ApiError.badRequest(`invalid query: ${q.error.issues[0]?.message ?? ""}`);
      const all = ["true", "1"].includes(q.data["all-projects"] ?? "");
      const project = q.data.project || "default";
      const ops = (await listOperations(ctx.db)).filter((op) => all || op.project === "" || op.project === project);
      const recursive = (q.data.recursion ?? "0") !== "0";
      const groups: Record<string, (Operation | string)[]> = {};
      for (const op of ops) {
        const key = op.status.toLowerCase();
        (groups[key] ??= []).push(recursive ? view(op) : `/1.0/operations/${op.id}`);
      }
      return sendSync(reply, groups);
    });

    app.get<{ Params: { id: string } }>("/1.0/operations/:id", async (req, reply) => sendSync(reply, view(await getOperation(ctx.db, req.params.id))));

    app.delete<{ Params: { id: string } }>("/1.0/operations/:id", async (req, reply) => {
      await cancelOperation(ctx.db, req.params.id);
      return sendSync(reply, {});
    });

    // No websocket-class operation exists yet (exec/console come with instances); LXD's
    // answer for any other class.
    app.get<{ Params: { id: string } }>("/1.0/operations/:id/websocket", async (req) => {
      const op = await getOperation(ctx.db, req.params.id);
      if (op.class !== "websocket") throw ApiError.badRequest("Only websocket operations can be connected");
      throw new ApiError(501, "operation websockets are not implemented yet");
    });

    app.get<{ Params: { id: string } }>("/1.0/operations/:id/wait", async (req, reply) => {
      const q = waitQuery.safeParse(req.query);
      if (!q.success) throw ApiError.badRequest(q.error.issues[0]?.message ?? "invalid timeout");
      const timeout = Number(q.data.timeout ?? "-1");
      const limitMs = timeout < 0 ? MAX_WAIT_MS : Math.min(timeout * 1000, MAX_WAIT_MS);
      const deadline = Date.now() + limitMs;
      // Woken by the database's Watch stream when `operations` changes (the coordinator's
      // progress and completion writes); polled while the stream is not live.
      let changed = false;
      let wake: (() => void) | undefined;
      const stop = ctx.cache.onChange((tables) => {
        if (!tables.includes("operations")) return;
        changed = true;
        wake?.();
      });
      const nap = (ms: number) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      try {
        let op = await getOperation(ctx.db, req.params.id);
        while (!isFinal(op.status_code) && Date.now() < deadline && !req.raw.socket.destroyed) {
          if (!changed) await nap(Math.min(ctx.cache.isLive ? WAIT_LIVE_RECHECK_MS : WAIT_POLL_MS, Math.max(0, deadline - Date.now())));
          wake = undefined;
          changed = false;
          op = await getOperation(ctx.db, req.params.id);
        }
        // At the deadline the current state is returned (still running): the caller can wait again.
        return sendSync(reply, view(op));
      } finally {
        stop();
      }
    });
  };
}
