// /1.0/instances/<name>/files?path=…: `lxc file pull|push|delete|edit` (LXD 5.0's
// file API). The owning member's agent reads and writes the instance's rootfs
// itself (ReadFile / WriteFile / DeleteFile, services/member/src/files/), so stopped
// instances work too; the gateway only bridges HTTP and the agent's stream, never
// holding a whole file: a GET streams the agent's data chunks into the response, a
// POST streams the raw request body (not parsed, not bound by the JSON body limit)
// into WriteFile. GET answers a file's bytes (application/octet-stream), a symlink's
// target, or a directory's entries (a sync response) with X-LXD-uid/gid/mode/type/
// modified; HEAD the headers alone. Pushes and deletions publish LXD's lifecycle
// events (instance-file-pushed / instance-file-deleted).
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { instanceEvent, requestor } from "../events/events.ts";
import { agentError, AgentClients } from "../instances/agents.ts";
import { fileHeaders, requestPath, writeRequest } from "../instances/file-headers.ts";
import { findInstance, type InstanceRow } from "../instances/instances.ts";
import { ownerOf, type LiveMember } from "../instances/placement.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { queryParam, requestProject } from "./objects.ts";

type FileRequest = FastifyRequest<{ Params: { name: string } }>;

/** How long a refused upload is read on before the refusal is answered anyway. */
const DRAIN_MS = 60_000;

/**
 * Resolves once the rest of a refused upload has arrived (and was dropped), or after
 * DRAIN_MS. The lxc client sends `Connection: close`, so the answer ends the
 * connection; while it is still uploading, it then reports the broken pipe instead of
 * the answer. A 'data' listener, not resume() alone: that does nothing while the agent
 * stream's iterator still listens for 'readable'; the listener makes the body flow
 * once the iterator lets go.
 */
function drained(body: Readable): Promise<void> {
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const ev of ["end", "close", "error"]) body.off(ev, done);
      resolve();
    };
    const timer = setTimeout(done, DRAIN_MS);
    for (const ev of ["end", "close", "error"]) body.on(ev, done);
    body.on("data", () => undefined);
    body.resume();
  });
}

export function instanceFileRoutes(ctx: GatewayContext) {
  const agents = new AgentClients(ctx.tls);

  /** The instance, its owning member (reachable now) and the path asked for. */
  async function target(req: FileRequest): Promise<{ i: InstanceRow; m: LiveMember; path: string }> {
    const project = await requestProject(ctx.db, req);
    const i = await findInstance(ctx.db, project, req.params.name);
    const path = requestPath(queryParam(req, "path"));
    if (i.power === "CREATING") throw ApiError.badRequest("The instance is being created");
    return { i, m: await ownerOf(ctx.db, i), path };
  }

  async function published(action: string, i: InstanceRow, m: LiveMember, path: string, req: FileRequest): Promise<void> {
    try {
      await ctx.db.exec(instanceEvent(action, i, m.row.name, { requestor: requestor(req), context: { path } }));
    } catch (e) {
      process.stderr.write(`shoal-api: ${action} event for ${i.name}:${path} not published: ${(e as Error).message}\n`);
    }
  }

  async function read(req: FileRequest, reply: FastifyReply, statOnly: boolean) {
    const { i, m, path } = await target(req);
    let r;
    try {
      r = await agents.get(m.row.address).readFile(i.agentName, path, { statOnly });
    } catch (e) {
      throw agentError(e, m.row.name);
    }
    reply.headers(fileHeaders(r.info));
    if (statOnly) return reply.code(200).send();
    if (r.info.type === "directory") return sendSync(reply, r.info.entries);
    reply.code(200).type("application/octet-stream");
    if (r.info.type === "symlink") return reply.send(Buffer.from(r.info.target));
    // Streamed as the agent sends it; a client that goes away ends the agent's call.
    return reply.send(Readable.from(r.data, { objectMode: false }));
  }

  return async function (app: FastifyInstance) {
    app.addHook("onClose", async () => agents.close());
    // Uploads are the file's raw bytes, whatever the content type (the Go client sends none).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", (_req, payload, done) => done(null, payload));

    // HEAD before GET: fastify would otherwise answer HEAD with the GET handler (reading the file).
    app.head("/1.0/instances/:name/files", async (req: FileRequest, reply) => read(req, reply, true));
    app.get("/1.0/instances/:name/files", async (req: FileRequest, reply) => read(req, reply, false));

    app.post("/1.0/instances/:name/files", async (req: FileRequest, reply) => {
      const body = req.body as Readable | undefined;
      try {
        const { i, m, path } = await target(req);
        const how = writeRequest(req.headers);
        try {
          // Not destroyed when the agent stops early (the rest is drained below).
          const data = body ? (body.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>) : [];
          await agents.get(m.row.address).writeFile({ name: i.agentName, path, ...how }, data);
        } catch (e) {
          throw agentError(e, m.row.name);
        }
        await published("instance-file-pushed", i, m, path, req);
        return sendSync(reply, {});
      } catch (e) {
        if (body) await drained(body);
        throw e;
      }
    });

    app.delete("/1.0/instances/:name/files", async (req: FileRequest, reply) => {
      const { i, m, path } = await target(req);
      try {
        await agents.get(m.row.address).deleteFile(i.agentName, path);
      } catch (e) {
        throw agentError(e, m.row.name);
      }
      await published("instance-file-deleted", i, m, path, req);
      return sendSync(reply, {});
    });
  };
}
