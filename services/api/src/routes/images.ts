// /1.0/images and /1.0/images/aliases. `lxc image import FILE` POSTs the raw
// unified tarball (application/octet-stream, X-LXD-filename, ...): the gateway
// streams it to one online member's agent (ImportImage; the agent computes the
// sha256 and keeps nothing unless it is a valid image) and records the image and
// which member holds it. Other members pull it from a holder when an instance needs
// it there (routes/instances.ts). The reply is a task operation, as LXD's, whose
// metadata carries the fingerprint and size.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Readable } from "node:stream";
import { z } from "zod";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import { lifecycleEvent, publishStatements, requestor } from "../events/events.ts";
import {
  aliasView,
  findAlias,
  findImage,
  imageHolders,
  imageProject,
  imageView,
  insertImageStatements,
  listAliases,
  listImages,
  validateAliasName,
  type ImageRow,
} from "../images/images.ts";
import { agentError, agentMessage, AgentClients } from "../instances/agents.ts";
import { matches, parseFilter } from "../instances/filter.ts";
import { liveMembers } from "../instances/placement.ts";
import { startTask } from "../operations/tasks.ts";
import { sendAsync, view } from "../operations/store.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { badBody, checkIfMatch, etagOf, recursive, requestProject } from "./objects.ts";

const aliasPost = z.object({ name: z.string(), target: z.string(), description: z.string().optional(), type: z.string().optional() });
const aliasPut = z.object({ target: z.string().optional(), description: z.string().optional() });
const aliasRename = z.object({ name: z.string() });
const imagePut = z.object({
  auto_update: z.boolean().optional(),
  properties: z.record(z.string(), z.string()).nullish(),
  public: z.boolean().optional(),
  expires_at: z.string().optional(),
  profiles: z.array(z.string()).nullish(),
});

const isTrue = (v: unknown) => typeof v === "string" && ["true", "1", "yes", "on"].includes(v.toLowerCase());

/** X-LXD-properties: a URL query string of properties. */
function headerProperties(h: string | string[] | undefined): Record<string, string> {
  if (typeof h !== "string" || h === "") return {};
  return Object.fromEntries(new URLSearchParams(h));
}

export function imageRoutes(ctx: GatewayContext) {
  const agents = new AgentClients(ctx.tls);
  const event = (action: string, source: string, project: string, req: FastifyRequest, context?: Record<string, unknown>): ExecStatement[] =>
    publishStatements(lifecycleEvent({ action, source, location: ctx.serverName, requestor: requestor(req), project, context }));

  async function projectOf(req: FastifyRequest): Promise<string> {
    return imageProject(ctx.db, await requestProject(ctx.db, req));
  }

  async function withAliases(images: ImageRow[], project: string) {
    const aliases = await listAliases(ctx.db, project);
    return images.map((i) => imageView(i, aliases.filter((a) => a.fingerprint === i.fingerprint)));
  }

  return async function (app: FastifyInstance) {
    app.addHook("onClose", async () => agents.close());
    // Uploads are streamed to a member, never buffered here (and not bound by the JSON body limit).
    app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));
    app.addContentTypeParser("multipart/form-data", (_req, payload, done) => done(null, payload));

    app.get("/1.0/images", async (req, reply) => {
      const project = await projectOf(req);
      const filter = parseFilter(typeof (req.query as { filter?: unknown }).filter === "string" ? (req.query as { filter: string }).filter : "");
      const images = (await withAliases(await listImages(ctx.db, project), project)).filter((i) => matches(i, filter));
      if (!recursive(req)) return sendSync(reply, images.map((i) => `/1.0/images/${i.fingerprint}`));
      return sendSync(reply, images);
    });

    app.post("/1.0/images", async (req, reply) => {
      const project = await projectOf(req);
      const type = String(req.headers["content-type"] ?? "");
      const body = req.body as Readable | undefined;
      if (type.startsWith("multipart/form-data")) {
        body?.resume();
        throw ApiError.badRequest("Split images (metadata + rootfs in two files) are not supported yet: import a unified tarball");
      }
      if (!type.startsWith("application/octet-stream") || !body || typeof (body as Readable).pipe !== "function") {
        throw ApiError.badRequest("Only image file uploads are supported (lxc image import FILE); copying from a remote server is not");
      }
      const online = (await liveMembers(ctx.db)).filter((m) => m.status === "Online");
      if (!online.length) {
        body.resume();
        throw new ApiError(503, "No online cluster member can take the image");
      }
      const member = online[Math.floor(Math.random() * online.length)];
      const filename = String(req.headers["x-lxd-filename"] ?? "");
      let info;
      try {
        info = await agents.get(member.row.address).importImage(body as AsyncIterable<Uint8Array>, { filename });
      } catch (e) {
        body.resume();
        throw agentError(e, member.row.name);
      }
      const exists = await ctx.db.query("SELECT 1 FROM images WHERE project = ? AND fingerprint = ?", [project, info.fingerprint]);
      if (exists.rows.length) throw new ApiError(409, "Image with same fingerprint already exists");
      const now = new Date().toISOString();
      const row: ImageRow = {
        project,
        fingerprint: info.fingerprint,
        filename: filename || info.filename,
        size: info.size,
        architecture: info.architecture,
        type: info.type || "container",
        properties: { ...info.properties, ...headerProperties(req.headers["x-lxd-properties"]) },
        public: isTrue(req.headers["x-lxd-public"]),
        autoUpdate: false,
        createdAt: info.createdAt ? new Date(info.createdAt).toISOString() : now,
        uploadedAt: now,
        lastUsedAt: "",
      };
      const metadata = { fingerprint: row.fingerprint, size: String(row.size) };
      const { op } = await startTask(ctx.db, {
        description: "Downloading image",
        project,
        location: member.row.name,
        run: async () => ({
          metadata,
          statements: [...insertImageStatements(row, member.row.nodeId), ...event("image-created", `/1.0/images/${row.fingerprint}`, project, req, { type: row.type })],
        }),
      });
      return sendAsync(reply, view(op));
    });

    app.get("/1.0/images/:fingerprint", async (req: FastifyRequest<{ Params: { fingerprint: string } }>, reply) => {
      const project = await projectOf(req);
      const image = await findImage(ctx.db, project, req.params.fingerprint);
      const [v] = await withAliases([image], project);
      return sendSync(reply, v, { etag: etagOf([v.auto_update, v.properties, v.public, v.expires_at, v.profiles]) });
    });

    const updateImage = async (req: FastifyRequest<{ Params: { fingerprint: string } }>, mode: "put" | "patch") => {
      const project = await projectOf(req);
      const image = await findImage(ctx.db, project, req.params.fingerprint);
      const [v] = await withAliases([image], project);
      checkIfMatch(req, etagOf([v.auto_update, v.properties, v.public, v.expires_at, v.profiles]));
      const parsed = imagePut.safeParse(req.body ?? {});
      if (!parsed.success) throw badBody(parsed.error);
      const b = parsed.data;
      const properties = mode === "put" ? (b.properties ?? {}) : { ...image.properties, ...(b.properties ?? {}) };
      const pub = b.public ?? (mode === "put" ? false : image.public);
      const autoUpdate = b.auto_update ?? (mode === "put" ? false : image.autoUpdate);
      await ctx.db.exec([
        { sql: "UPDATE images SET properties = ?, public = ?, auto_update = ? WHERE project = ? AND fingerprint = ?", params: [JSON.stringify(properties), pub ? 1 : 0, autoUpdate ? 1 : 0, project, image.fingerprint], expectChanges: 1 },
        ...event("image-updated", `/1.0/images/${image.fingerprint}`, project, req),
      ]);
    };
    app.put("/1.0/images/:fingerprint", async (req: FastifyRequest<{ Params: { fingerprint: string } }>, reply) => {
      await updateImage(req, "put");
      return sendSync(reply, null);
    });
    app.patch("/1.0/images/:fingerprint", async (req: FastifyRequest<{ Params: { fingerprint: string } }>, reply) => {
      await updateImage(req, "patch");
      return sendSync(reply, null);
    });

    app.delete("/1.0/images/:fingerprint", async (req: FastifyRequest<{ Params: { fingerprint: string } }>, reply) => {
      const project = await projectOf(req);
      const image = await findImage(ctx.db, project, req.params.fingerprint);
      const fp = image.fingerprint;
      const { op } = await startTask(ctx.db, {
        description: "Deleting image",
        project,
        location: ctx.serverName,
        resources: { images: [`/1.0/images/${fp}`] },
        run: async () => {
          // The file goes from every holder only when no other project still records it.
          const others = await ctx.db.query("SELECT 1 FROM images WHERE fingerprint = ? AND project != ?", [fp, project]);
          const statements: ExecStatement[] = [
            { sql: "DELETE FROM images WHERE project = ? AND fingerprint = ?", params: [project, fp] },
            { sql: "DELETE FROM image_aliases WHERE project = ? AND fingerprint = ?", params: [project, fp] },
            ...event("image-deleted", `/1.0/images/${fp}`, project, req),
          ];
          if (!others.rows.length) {
            const [holders, members] = await Promise.all([imageHolders(ctx.db, fp), liveMembers(ctx.db)]);
            for (const nodeId of holders) {
              const m = members.find((x) => x.row.nodeId === nodeId);
              if (!m) continue;
              try {
                await agents.get(m.row.address).deleteImage(fp);
              } catch (e) {
                // An unreachable member keeps a stray file; the record goes anyway.
                if ((e as { code?: number }).code !== 5 /* NOT_FOUND */) process.stderr.write(`shoal-api: deleting image ${fp} on ${m.row.name}: ${agentMessage(e)}\n`);
              }
            }
            statements.push({ sql: "DELETE FROM image_members WHERE fingerprint = ?", params: [fp] });
          }
          return { statements };
        },
      });
      return sendAsync(reply, view(op));
    });

    // ---- aliases ----

    app.get("/1.0/images/aliases", async (req, reply) => {
      const project = await projectOf(req);
      const aliases = await listAliases(ctx.db, project);
      if (!recursive(req)) return sendSync(reply, aliases.map((a) => `/1.0/images/aliases/${encodeURIComponent(a.name)}`));
      return sendSync(reply, aliases.map((a) => aliasView(a)));
    });

    app.post("/1.0/images/aliases", async (req, reply) => {
      const project = await projectOf(req);
      const parsed = aliasPost.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const b = parsed.data;
      validateAliasName(b.name);
      const image = await findImage(ctx.db, project, b.target);
      const taken = await ctx.db.query("SELECT 1 FROM image_aliases WHERE project = ? AND name = ?", [project, b.name]);
      if (taken.rows.length) throw new ApiError(409, "Alias already exists");
      await ctx.db.exec([
        { sql: "INSERT INTO image_aliases (project, name, fingerprint, description) VALUES (?, ?, ?, ?)", params: [project, b.name, image.fingerprint, b.description ?? ""] },
        ...event("image-alias-created", `/1.0/images/aliases/${b.name}`, project, req, { target: image.fingerprint }),
      ]).catch((e: unknown) => {
        if (/UNIQUE|constraint/i.test(String(e))) throw new ApiError(409, "Alias already exists");
        throw e;
      });
      return sendSync(reply, null, { status: 201, location: `/1.0/images/aliases/${encodeURIComponent(b.name)}` });
    });

    app.get("/1.0/images/aliases/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const project = await projectOf(req);
      const a = await findAlias(ctx.db, project, req.params.name);
      return sendSync(reply, aliasView(a), { etag: etagOf([a.name, a.description, a.fingerprint]) });
    });

    const updateAlias = async (req: FastifyRequest<{ Params: { name: string } }>, mode: "put" | "patch") => {
      const project = await projectOf(req);
      const a = await findAlias(ctx.db, project, req.params.name);
      checkIfMatch(req, etagOf([a.name, a.description, a.fingerprint]));
      const parsed = aliasPut.safeParse(req.body ?? {});
      if (!parsed.success) throw badBody(parsed.error);
      const target = parsed.data.target ? (await findImage(ctx.db, project, parsed.data.target)).fingerprint : a.fingerprint;
      if (mode === "put" && !parsed.data.target) throw ApiError.badRequest("The target field is required");
      const description = parsed.data.description ?? (mode === "put" ? "" : a.description);
      await ctx.db.exec([
        { sql: "UPDATE image_aliases SET fingerprint = ?, description = ? WHERE project = ? AND name = ?", params: [target, description, project, a.name], expectChanges: 1 },
        ...event("image-alias-updated", `/1.0/images/aliases/${a.name}`, project, req, { target }),
      ]);
    };
    app.put("/1.0/images/aliases/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      await updateAlias(req, "put");
      return sendSync(reply, null);
    });
    app.patch("/1.0/images/aliases/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      await updateAlias(req, "patch");
      return sendSync(reply, null);
    });

    app.post("/1.0/images/aliases/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const project = await projectOf(req);
      const a = await findAlias(ctx.db, project, req.params.name);
      const parsed = aliasRename.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      validateAliasName(parsed.data.name);
      const taken = await ctx.db.query("SELECT 1 FROM image_aliases WHERE project = ? AND name = ?", [project, parsed.data.name]);
      if (taken.rows.length) throw new ApiError(409, "Alias already exists");
      await ctx.db.exec([
        { sql: "UPDATE image_aliases SET name = ? WHERE project = ? AND name = ?", params: [parsed.data.name, project, a.name], expectChanges: 1 },
        ...event("image-alias-renamed", `/1.0/images/aliases/${parsed.data.name}`, project, req, { old_name: a.name }),
      ]);
      return sendSync(reply, null, { status: 201, location: `/1.0/images/aliases/${encodeURIComponent(parsed.data.name)}` });
    });

    app.delete("/1.0/images/aliases/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const project = await projectOf(req);
      const a = await findAlias(ctx.db, project, req.params.name);
      await ctx.db.exec([
        { sql: "DELETE FROM image_aliases WHERE project = ? AND name = ?", params: [project, a.name], expectChanges: 1 },
        ...event("image-alias-deleted", `/1.0/images/aliases/${a.name}`, project, req, { target: a.fingerprint }),
      ]);
      return sendSync(reply, null);
    });
  };
}
