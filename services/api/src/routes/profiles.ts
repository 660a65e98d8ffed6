// /1.0/profiles: profiles in the replicated `profiles` table, per project (a project
// without features.profiles uses the default project's, as LXD). Read and update
// (PUT/PATCH with ETag), create, rename and delete (`default` can be neither renamed
// nor deleted). Each change writes its lifecycle event in the same batch.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { lifecycleEvent, publishStatements, requestor } from "../events/events.ts";
import { ApiError, sendSync } from "../response.ts";
import type { Database } from "../schema.ts";
import type { GatewayContext } from "../server.ts";
import { badBody, checkIfMatch, etagOf, ifMatch, preconditionAs412, queryParam, recursive, sortedJson } from "./objects.ts";

interface StoredProfile {
  project: string;
  name: string;
  description: string;
  configText: string;
  devicesText: string;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
}

/** `?project=` → the project whose profiles apply; 404 `Project not found` when unknown. */
async function profileProject(db: Database, req: FastifyRequest): Promise<{ requested: string; effective: string }> {
  const requested = queryParam(req, "project") || "default";
  const r = await db.query("SELECT config FROM projects WHERE name = ?", [requested]);
  if (!r.rows.length) throw ApiError.notFound("Project not found");
  const config = JSON.parse(String(r.rows[0][0])) as Record<string, string>;
  const own = ["true", "1", "yes", "on"].includes((config["features.profiles"] ?? "").toLowerCase());
  return { requested, effective: own ? requested : "default" };
}

function fromRow(row: unknown[]): StoredProfile {
  const [project, name, description, configText, devicesText] = row.map(String);
  return { project, name, description, configText, devicesText, config: JSON.parse(configText), devices: JSON.parse(devicesText) };
}

async function findProfile(db: Database, project: string, name: string): Promise<StoredProfile> {
  const r = await db.query("SELECT project, name, description, config, devices FROM profiles WHERE project = ? AND name = ?", [project, name]);
  if (!r.rows.length) throw ApiError.notFound("Profile not found");
  return fromRow(r.rows[0]);
}

const profileEtag = (p: StoredProfile) => etagOf([p.config, p.description, p.devices]);
const toApi = (p: StoredProfile) => ({ name: p.name, description: p.description, config: p.config, devices: p.devices, used_by: [] as string[] });

const deviceSchema = z.record(z.string(), z.string()).refine((d) => typeof d.type === "string" && d.type !== "", { message: "device without a type" });
const putSchema = z.object({
  description: z.string().optional(),
  config: z.record(z.string(), z.string()).nullish(),
  devices: z.record(z.string(), deviceSchema).nullish(),
});

/** Instance config keys a profile may carry before instances exist: the free-form namespaces and the common limits. */
function validateProfileConfig(config: Record<string, string>): void {
  for (const key of Object.keys(config)) {
    if (/^(user|environment|image|volatile)\./.test(key)) continue;
    if (/^(limits|security|boot|raw|linux|nvidia|snapshots|migration|cloud-init|agent|cluster)\.|^user\./.test(key)) continue;
    throw ApiError.badRequest(`Invalid config: Unknown configuration key: ${key}`);
  }
}

/** LXD 5.0's profile name checks. */
function validateProfileName(name: string): void {
  if (name === "") throw ApiError.badRequest("No name provided");
  if (name.includes("/")) throw ApiError.badRequest("Profile names may not contain slashes");
  if (name === "." || name === ".." || /[\s\x00-\x1f\x7f]/.test(name)) throw ApiError.badRequest(`Invalid profile name "${name}"`);
}

const postSchema = putSchema.extend({ name: z.string() });
const renameSchema = z.object({ name: z.string() });
const absent = (project: string, name: string) => ({ sql: "SELECT 1 FROM profiles WHERE project = ? AND name = ?", params: [project, name], expectRows: 0, message: "the profile already exists" });

export function profileRoutes(ctx: GatewayContext) {
  const event = (req: FastifyRequest, action: string, project: string, name: string, context?: Record<string, unknown>) =>
    publishStatements(lifecycleEvent({ action, source: `/1.0/profiles/${name}`, location: ctx.serverName, requestor: requestor(req), project, context }));

  async function update(req: FastifyRequest<{ Params: { name: string } }>, mode: "put" | "patch"): Promise<void> {
    const { effective } = await profileProject(ctx.db, req);
    const current = await findProfile(ctx.db, effective, req.params.name);
    checkIfMatch(req, profileEtag(current));
    const parsed = putSchema.safeParse(req.body ?? null);
    if (!parsed.success) throw badBody(parsed.error);
    const b = parsed.data;
    const config = mode === "put" ? { ...(b.config ?? {}) } : { ...current.config, ...(b.config ?? {}) };
    const devices = mode === "put" ? { ...(b.devices ?? {}) } : { ...current.devices, ...(b.devices ?? {}) };
    const description = b.description ?? (mode === "put" ? "" : current.description);
    validateProfileConfig(config);
    const configText = sortedJson(config);
    const devicesText = sortedJson(devices);
    if (configText === current.configText && devicesText === current.devicesText && description === current.description) return;
    try {
      await ctx.db.exec(
        [
          { sql: "UPDATE profiles SET description = ?, config = ?, devices = ? WHERE project = ? AND name = ?", params: [description, configText, devicesText, effective, current.name], expectChanges: 1 },
          ...event(req, "profile-updated", effective, current.name),
        ],
        {
          preconditions: ifMatch(req) !== undefined
            ? [{
                sql: "SELECT description || char(10) || config || char(10) || devices FROM profiles WHERE project = ? AND name = ?",
                params: [effective, current.name],
                expectValue: `${current.description}\n${current.configText}\n${current.devicesText}`,
                message: "the profile changed meanwhile",
              }]
            : [],
        },
      );
    } catch (e) {
      preconditionAs412(e, "profile");
    }
  }

  return async function (app: FastifyInstance) {
    app.get("/1.0/profiles", async (req, reply) => {
      const rec = recursive(req);
      const { effective } = await profileProject(ctx.db, req);
      const r = await ctx.db.query("SELECT project, name, description, config, devices FROM profiles WHERE project = ? ORDER BY name", [effective]);
      const all = r.rows.map(fromRow);
      if (!rec) return sendSync(reply, all.map((p) => `/1.0/profiles/${encodeURIComponent(p.name)}`));
      return sendSync(reply, all.map(toApi));
    });

    app.post("/1.0/profiles", async (req, reply) => {
      const { effective } = await profileProject(ctx.db, req);
      const parsed = postSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const b = parsed.data;
      validateProfileName(b.name);
      const config = b.config ?? {};
      validateProfileConfig(config);
      const exists = await ctx.db.query("SELECT 1 FROM profiles WHERE project = ? AND name = ?", [effective, b.name]);
      if (exists.rows.length) throw ApiError.badRequest("The profile already exists");
      try {
        await ctx.db.exec(
          [
            { sql: "INSERT INTO profiles (project, name, description, config, devices) VALUES (?, ?, ?, ?, ?)", params: [effective, b.name, b.description ?? "", sortedJson(config), sortedJson(b.devices ?? {})] },
            ...event(req, "profile-created", effective, b.name),
          ],
          { preconditions: [absent(effective, b.name)] },
        );
      } catch (e) {
        try {
          preconditionAs412(e, "profile");
        } catch (mapped) {
          if (mapped instanceof ApiError && mapped.status === 412) throw ApiError.badRequest("The profile already exists");
          throw mapped;
        }
      }
      return sendSync(reply, null, { status: 201, location: `/1.0/profiles/${encodeURIComponent(b.name)}` });
    });

    app.post<{ Params: { name: string } }>("/1.0/profiles/:name", async (req, reply) => {
      const { effective } = await profileProject(ctx.db, req);
      const parsed = renameSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      if (req.params.name === "default") throw new ApiError(403, "The 'default' profile cannot be renamed");
      const current = await findProfile(ctx.db, effective, req.params.name);
      const to = parsed.data.name;
      validateProfileName(to);
      if ((await ctx.db.query("SELECT 1 FROM profiles WHERE project = ? AND name = ?", [effective, to])).rows.length) {
        throw new ApiError(409, `Name "${to}" already in use`);
      }
      try {
        await ctx.db.exec(
          [
            { sql: "UPDATE profiles SET name = ? WHERE project = ? AND name = ?", params: [to, effective, current.name], expectChanges: 1 },
            ...event(req, "profile-renamed", effective, to, { old_name: current.name }),
          ],
          { preconditions: [absent(effective, to)] },
        );
      } catch (e) {
        try {
          preconditionAs412(e, "profile");
        } catch (mapped) {
          if (mapped instanceof ApiError && mapped.status === 412) throw new ApiError(409, `Name "${to}" already in use`);
          throw mapped;
        }
      }
      return sendSync(reply, null, { status: 201, location: `/1.0/profiles/${encodeURIComponent(to)}` });
    });

    app.delete<{ Params: { name: string } }>("/1.0/profiles/:name", async (req, reply) => {
      const { effective } = await profileProject(ctx.db, req);
      if (req.params.name === "default") throw new ApiError(403, "The 'default' profile cannot be deleted");
      const current = await findProfile(ctx.db, effective, req.params.name);
      await ctx.db.exec([
        { sql: "DELETE FROM profiles WHERE project = ? AND name = ?", params: [effective, current.name], expectChanges: 1 },
        ...event(req, "profile-deleted", effective, current.name),
      ]);
      return sendSync(reply, null);
    });

    app.get<{ Params: { name: string } }>("/1.0/profiles/:name", async (req, reply) => {
      const { effective } = await profileProject(ctx.db, req);
      const p = await findProfile(ctx.db, effective, req.params.name);
      return sendSync(reply, toApi(p), { etag: profileEtag(p) });
    });

    app.put<{ Params: { name: string } }>("/1.0/profiles/:name", async (req, reply) => {
      await update(req, "put");
      return sendSync(reply, null);
    });
    app.patch<{ Params: { name: string } }>("/1.0/profiles/:name", async (req, reply) => {
      await update(req, "patch");
      return sendSync(reply, null);
    });
  };
}
