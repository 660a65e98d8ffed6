// POST /1.0/instances/<name>/exec (`lxc exec`): a "websocket" operation whose fds the
// client connects to (stdin/stdout/stderr, or one terminal when interactive, and
// "control" for window sizes and signals); the command runs through the owning
// member's agent Exec stream and the operation ends with its exit code
// (metadata.return). The websocket plumbing is instances/exec.ts.
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { agentError, agentMessage, AgentClients } from "../instances/agents.ts";
import { endSession, newSession, send } from "../instances/exec.ts";
import { findInstance, liveStatus } from "../instances/instances.ts";
import { ownerOf } from "../instances/placement.ts";
import { startTask } from "../operations/tasks.ts";
import { sendAsync, view } from "../operations/store.ts";
import { ApiError } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { badBody, requestProject } from "./objects.ts";

const execSchema = z.object({
  command: z.array(z.string()).min(1),
  environment: z.record(z.string(), z.string()).nullish(),
  interactive: z.boolean().optional(),
  "wait-for-websocket": z.boolean().optional(),
  "record-output": z.boolean().optional(),
  width: z.number().optional(),
  height: z.number().optional(),
  user: z.number().optional(),
  group: z.number().optional(),
  cwd: z.string().optional(),
});
const controlSchema = z.object({ command: z.string(), args: z.record(z.string(), z.string()).nullish(), signal: z.number().optional() });

export function instanceExecRoutes(ctx: GatewayContext) {
  const agents = new AgentClients(ctx.tls);
  const log = (line: string) => process.stderr.write(`shoal-api: ${line}\n`);
  return async function (app: FastifyInstance) {
    app.addHook("onClose", async () => agents.close());

    app.post("/1.0/instances/:name/exec", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const project = await requestProject(ctx.db, req);
      const i = await findInstance(ctx.db, project, req.params.name);
      const parsed = execSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const b = parsed.data;
      if (!b["wait-for-websocket"]) throw ApiError.badRequest("Only exec with wait-for-websocket is supported yet (lxc exec)");
      const interactive = b.interactive ?? false;
      const m = await ownerOf(ctx.db, i);
      const agent = agents.get(m.row.address);
      let running = false;
      try {
        running = liveStatus(await agent.instanceState(i.agentName)).status_code === 103;
      } catch (e) {
        throw agentError(e, m.row.name);
      }
      if (!running) throw ApiError.badRequest("Instance is not running");
      // The session exists before the 202 reaches the client (it connects at once).
      const session = newSession(randomUUID(), interactive);
      const { op } = await startTask(ctx.db, {
        id: session.id,
        class: "websocket",
        description: "Executing command",
        project,
        location: m.row.name,
        resources: { containers: [`/1.0/containers/${i.name}`], instances: [`/1.0/instances/${i.name}`] },
        metadata: { fds: session.secrets },
        run: async () => {
          const s = session;
          try {
            await s.connected;
            const ws = (fd: string) => s.sockets.get(fd);
            const out = interactive ? ws("0") : ws("1");
            const err = interactive ? ws("0") : ws("2");
            let writes: Promise<void> = Promise.resolve();
            const x = agent.exec(
              {
                name: i.agentName,
                command: b.command,
                environment: b.environment ?? {},
                cwd: b.cwd ?? "",
                interactive,
                window: { width: b.width ?? 80, height: b.height ?? 24 },
                uid: b.user ?? 0,
                gid: b.group ?? 0,
              },
              {
                onStdout: (chunk) => void (writes = writes.then(() => send(out, chunk))),
                onStderr: (chunk) => void (writes = writes.then(() => send(err, chunk))),
              },
            );
            s.inbox("0").read(
              (bytes) => {
                // A client may mark stdin's end with an empty message as well as with a close.
                if (!interactive && bytes.length === 0) x.closeStdin();
                else x.write(bytes);
              },
              () => {
                if (!interactive) x.closeStdin();
              },
            );
            s.inbox("control").read((bytes) => {
              let msg: unknown;
              try {
                msg = JSON.parse(bytes.toString("utf8"));
              } catch {
                return;
              }
              const c = controlSchema.safeParse(msg);
              if (!c.success) return;
              if (c.data.command === "window-resize") {
                const w = Number(c.data.args?.width ?? 0);
                const h = Number(c.data.args?.height ?? 0);
                if (w > 0 && h > 0) x.resize(w, h);
              } else if (c.data.command === "signal" && c.data.signal) x.signal(c.data.signal);
            });
            const result = await x.result;
            await writes;
            return { metadata: { fds: s.secrets, return: result.exitCode } };
          } finally {
            endSession(s);
          }
        },
        describe: (e) => agentMessage(e),
        log,
      }).catch((e: unknown) => {
        endSession(session);
        throw e;
      });
      return sendAsync(reply, view(op));
    });
  };
}
