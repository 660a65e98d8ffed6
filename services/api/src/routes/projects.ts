// /1.0/projects: LXD projects in the replicated `projects` table. `default` exists
// from the schema migration and can be neither deleted nor renamed, nor can its
// features change. Config keys are validated with zod (unknown key → 400 naming it).
// A project created with features.profiles gets its own `default` profile, as in LXD.
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import { lifecycleEvent, publishStatements, requestor } from "../events/events.ts";
import { insertStatements, sendAsync, STATUS, statusName, view } from "../operations/store.ts";
import { ApiError, sendSync } from "../response.ts";
import type { Database } from "../schema.ts";
import type { GatewayContext } from "../server.ts";
import { badBody, checkIfMatch, etagOf, ifMatch, preconditionAs412, recursive, sortedJson } from "./objects.ts";

export interface Project {
  name: string;
  description: string;
  config: Record<string, string>;
  used_by: string[];
}

const FEATURES = ["features.images", "features.profiles", "features.storage.volumes", "features.networks"];
/** Features a new project gets when the request does not set them (LXD 5.0's defaults). */
const FEATURES_DEFAULT = ["features.images", "features.profiles", "features.storage.volumes"];

// LXD's validate.IsBool.
const check = (ok: (v: string) => boolean, message: (v: string) => string) =>
  z.string().superRefine((v, c) => {
    if (!ok(v)) c.addIssue({ code: "custom", message: message(v) });
  });
const bool = check((v) => ["true", "false", "1", "0", "yes", "no", "on", "off"].includes(v.toLowerCase()), (v) => `Invalid value for a boolean "${v}"`);
const uint = z.string().regex(/^\d+$/, "Invalid value for an integer");
const size = z.string().regex(/^\d+(\.\d+)?\s*([KMGTPE]i?B|[kMGTPE]B|B)?$/, "Invalid value for a size");
const sizeOrPercent = z.string().regex(/^(\d+(\.\d+)?\s*([KMGTPE]i?B|[kMGTPE]B|B)?|\d+%)$/, "Invalid value for a size or percentage");
const oneOf = (...values: string[]) => check((v) => values.includes(v), (v) => `Invalid value "${v}" (not one of ${values.join(", ")})`);
const any = z.string();

/** Project config keys (LXD 5.0's projectValidateConfig); `user.*` is free-form. */
const KEYS: Record<string, z.ZodType<string>> = {
  "features.images": bool,
  "features.profiles": bool,
  "features.storage.volumes": bool,
  "features.networks": bool,
  "limits.instances": uint,
  "limits.containers": uint,
  "limits.virtual-machines": uint,
  "limits.processes": uint,
  "limits.cpu": uint,
  "limits.networks": uint,
  "limits.memory": sizeOrPercent,
  "limits.disk": size,
  restricted: bool,
  "restricted.backups": oneOf("allow", "block"),
  "restricted.cluster.target": oneOf("allow", "block"),
  "restricted.containers.nesting": oneOf("allow", "block"),
  "restricted.containers.lowlevel": oneOf("allow", "block"),
  "restricted.containers.privilege": oneOf("unprivileged", "isolated", "allow"),
  "restricted.containers.interception": oneOf("allow", "block", "full"),
  "restricted.virtual-machines.lowlevel": oneOf("allow", "block"),
  "restricted.devices.unix-char": oneOf("allow", "block"),
  "restricted.devices.unix-block": oneOf("allow", "block"),
  "restricted.devices.unix-hotplug": oneOf("allow", "block"),
  "restricted.devices.infiniband": oneOf("allow", "block"),
  "restricted.devices.gpu": oneOf("allow", "block"),
  "restricted.devices.usb": oneOf("allow", "block"),
  "restricted.devices.pci": oneOf("allow", "block"),
  "restricted.devices.proxy": oneOf("allow", "block"),
  "restricted.devices.nic": oneOf("allow", "block", "managed"),
  "restricted.devices.disk": oneOf("allow", "block", "managed"),
  "restricted.devices.disk.paths": any,
  "restricted.idmap.uid": any,
  "restricted.idmap.gid": any,
  "restricted.networks.uplinks": any,
  "restricted.networks.subnets": any,
  "restricted.networks.zones": any,
  "restricted.snapshots": oneOf("allow", "block"),
  "backups.compression_algorithm": any,
  "images.auto_update_cached": bool,
  "images.auto_update_interval": uint,
  "images.compression_algorithm": any,
  "images.default_architecture": any,
  "images.remote_cache_expiry": uint,
};

const configSchema = z.record(z.string(), z.string());

/** Validates a project config (after merging); 400 naming the first bad key. */
export function validateProjectConfig(config: Record<string, string>): void {
  for (const [key, value] of Object.entries(config)) {
    if (key.startsWith("user.")) continue;
    const schema = KEYS[key];
    if (!schema) throw ApiError.badRequest(`Invalid project configuration key "${key}"`);
    const ok = schema.safeParse(value);
    if (!ok.success) throw ApiError.badRequest(`Invalid value for project configuration key "${key}": ${ok.error.issues[0]?.message ?? "invalid value"}`);
  }
}

/** An empty value unsets the key (what `lxc project unset` sends). */
function dropEmpty(config: Record<string, string>): void {
  for (const [k, v] of Object.entries(config)) if (v === "") delete config[k];
}

/** LXD 5.0's projectValidateName. */
export function validateProjectName(name: string): void {
  if (name === "") throw ApiError.badRequest("No name provided");
  if (name.includes("/")) throw ApiError.badRequest("Project names may not contain slashes");
  if (name.includes(" ")) throw ApiError.badRequest("Project names may not contain spaces");
  if (name.includes("_")) throw ApiError.badRequest("Project names may not contain underscores");
  if (name.includes("'") || name.includes('"')) throw ApiError.badRequest("Project names may not contain quotes");
  if (name === "*") throw ApiError.badRequest("Reserved project name");
  if (name === "." || name === ".." || /[\s\x00-\x1f\x7f]/.test(name)) throw ApiError.badRequest(`Invalid project name "${name}"`);
  if (name.length > 63) throw ApiError.badRequest("Project name is too long (at most 63 characters)");
}

interface StoredProject {
  name: string;
  description: string;
  configText: string;
  config: Record<string, string>;
}

function fromRow(row: unknown[]): StoredProject {
  const configText = String(row[2]);
  return { name: String(row[0]), description: String(row[1]), configText, config: JSON.parse(configText) as Record<string, string> };
}

async function findProject(db: Database, name: string): Promise<StoredProject> {
  const r = await db.query("SELECT name, description, config FROM projects WHERE name = ?", [name]);
  if (!r.rows.length) throw ApiError.notFound("Project not found");
  return fromRow(r.rows[0]);
}

function isTrue(v: string | undefined): boolean {
  return ["true", "1", "yes", "on"].includes((v ?? "").toLowerCase());
}

/** The URLs of what uses a project (its profiles, for now). */
async function usedBy(db: Database, name: string): Promise<string[]> {
  const r = await db.query("SELECT name FROM profiles WHERE project = ? ORDER BY name", [name]);
  const suffix = name === "default" ? "" : `?project=${encodeURIComponent(name)}`;
  return r.rows.map((row) => `/1.0/profiles/${encodeURIComponent(String(row[0]))}${suffix}`);
}

async function toApi(db: Database, p: StoredProject): Promise<Project> {
  return { name: p.name, description: p.description, config: p.config, used_by: await usedBy(db, p.name) };
}

const projectEtag = (p: StoredProject) => etagOf([p.description, p.config]);

/** Precondition: the project row is still what `p` was read as. */
const unchanged = (p: StoredProject) => ({
  sql: "SELECT description || char(10) || config FROM projects WHERE name = ?",
  params: [p.name],
  expectValue: `${p.description}\n${p.configText}`,
  message: "the project changed meanwhile",
});

const postSchema = z.object({ name: z.string(), description: z.string().optional(), config: configSchema.nullish() });
const putSchema = z.object({ description: z.string().optional(), config: configSchema.nullish() });
const renameSchema = z.object({ name: z.string() });

export function projectRoutes(ctx: GatewayContext) {
  const event = (action: string, name: string, req: FastifyRequest, context?: Record<string, unknown>): ExecStatement[] =>
    publishStatements(lifecycleEvent({ action, source: `/1.0/projects/${name}`, location: ctx.serverName, requestor: requestor(req), project: name, context }));

  async function update(req: FastifyRequest<{ Params: { name: string } }>, mode: "put" | "patch"): Promise<void> {
    const current = await findProject(ctx.db, req.params.name);
    checkIfMatch(req, projectEtag(current));
    const parsed = putSchema.safeParse(req.body ?? null);
    if (!parsed.success) throw badBody(parsed.error);
    const body = parsed.data;
    const config = mode === "put" ? { ...(body.config ?? {}) } : { ...current.config, ...(body.config ?? {}) };
    const description = body.description ?? (mode === "put" ? "" : current.description);
    dropEmpty(config);
    validateProjectConfig(config);
    if (current.name === "default") {
      for (const f of FEATURES) {
        if ((config[f] ?? "") !== (current.config[f] ?? "")) throw ApiError.badRequest("You can't change the features of the default project");
      }
    }
    const configText = sortedJson(config);
    if (configText === current.configText && description === current.description) return;
    try {
      await ctx.db.exec(
        [{ sql: "UPDATE projects SET description = ?, config = ? WHERE name = ?", params: [description, configText, current.name], expectChanges: 1 }, ...event("project-updated", current.name, req)],
        { preconditions: ifMatch(req) !== undefined ? [unchanged(current)] : [] },
      );
    } catch (e) {
      preconditionAs412(e, "project");
    }
  }

  return async function (app: FastifyInstance) {
    app.get("/1.0/projects", async (req, reply) => {
      const rec = recursive(req);
      const r = await ctx.db.query("SELECT name, description, config FROM projects ORDER BY name");
      const all = r.rows.map(fromRow);
      if (!rec) return sendSync(reply, all.map((p) => `/1.0/projects/${encodeURIComponent(p.name)}`));
      return sendSync(reply, await Promise.all(all.map((p) => toApi(ctx.db, p))));
    });

    app.post("/1.0/projects", async (req, reply) => {
      const parsed = postSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const { name, description = "" } = parsed.data;
      validateProjectName(name);
      const config = { ...(parsed.data.config ?? {}) };
      dropEmpty(config);
      for (const f of FEATURES_DEFAULT) if (!(f in config)) config[f] = "true";
      validateProjectConfig(config);
      const statements: ExecStatement[] = [{ sql: "INSERT INTO projects (name, description, config) VALUES (?, ?, ?)", params: [name, description, sortedJson(config)] }];
      if (isTrue(config["features.profiles"])) {
        statements.push({ sql: "INSERT INTO profiles (project, name, description, config, devices) VALUES (?, 'default', ?, '{}', '{}')", params: [name, `Default LXD profile for project ${name}`] });
      }
      try {
        await ctx.db.exec([...statements, ...event("project-created", name, req)], {
          preconditions: [{ sql: "SELECT 1 FROM projects WHERE name = ?", params: [name], expectRows: 0, message: "the project already exists" }],
        });
      } catch (e) {
        try {
          preconditionAs412(e, "project");
        } catch (mapped) {
          if (mapped instanceof ApiError && mapped.status === 412) throw new ApiError(409, `Error inserting "${name}" into database: The project already exists`);
          throw mapped;
        }
      }
      return sendSync(reply, null, { status: 201, location: `/1.0/projects/${encodeURIComponent(name)}` });
    });

    app.get<{ Params: { name: string } }>("/1.0/projects/:name", async (req, reply) => {
      const p = await findProject(ctx.db, req.params.name);
      return sendSync(reply, await toApi(ctx.db, p), { etag: projectEtag(p) });
    });

    app.put<{ Params: { name: string } }>("/1.0/projects/:name", async (req, reply) => {
      await update(req, "put");
      return sendSync(reply, null);
    });
    app.patch<{ Params: { name: string } }>("/1.0/projects/:name", async (req, reply) => {
      await update(req, "patch");
      return sendSync(reply, null);
    });

    // Rename: an async operation in LXD (the client waits on it); done in the same write.
    app.post<{ Params: { name: string } }>("/1.0/projects/:name", async (req, reply) => {
      const parsed = renameSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const from = req.params.name;
      const to = parsed.data.name;
      if (from === "default") throw new ApiError(403, "The 'default' project cannot be renamed");
      const current = await findProject(ctx.db, from);
      validateProjectName(to);
      if ((await ctx.db.query("SELECT 1 FROM projects WHERE name = ?", [to])).rows.length) throw new ApiError(409, `A project named "${to}" already exists`);
      const now = new Date().toISOString();
      const op = {
        id: randomUUID(),
        class: "task" as const,
        description: "Renaming project",
        created_at: now,
        updated_at: now,
        status: statusName(STATUS.Success),
        status_code: STATUS.Success,
        resources: { projects: [`/1.0/projects/${encodeURIComponent(from)}`] },
        metadata: null,
        may_cancel: false,
        err: "",
        location: ctx.serverName,
        project: "",
      };
      try {
        await ctx.db.exec(
          [
            { sql: "UPDATE projects SET name = ? WHERE name = ?", params: [to, from], expectChanges: 1 },
            { sql: "UPDATE profiles SET project = ? WHERE project = ?", params: [to, from] },
            ...insertStatements(op),
            ...publishStatements(lifecycleEvent({ action: "project-renamed", source: `/1.0/projects/${to}`, location: ctx.serverName, requestor: requestor(req), project: to, context: { old_name: from } })),
          ],
          { preconditions: [unchanged(current), { sql: "SELECT 1 FROM projects WHERE name = ?", params: [to], expectRows: 0, message: "the name is taken" }] },
        );
      } catch (e) {
        preconditionAs412(e, "project");
      }
      return sendAsync(reply, view(op));
    });

    app.delete<{ Params: { name: string } }>("/1.0/projects/:name", async (req, reply) => {
      if (req.params.name === "default") throw new ApiError(403, "The 'default' project cannot be deleted");
      const p = await findProject(ctx.db, req.params.name);
      const others = await ctx.db.query("SELECT name FROM profiles WHERE project = ? AND name != 'default'", [p.name]);
      if (others.rows.length) throw ApiError.badRequest("Only empty projects can be removed");
      await ctx.db.exec([
        { sql: "DELETE FROM profiles WHERE project = ?", params: [p.name] },
        { sql: "DELETE FROM projects WHERE name = ?", params: [p.name], expectChanges: 1 },
        ...event("project-deleted", p.name, req),
      ]);
      return sendSync(reply, null);
    });
  };
}
