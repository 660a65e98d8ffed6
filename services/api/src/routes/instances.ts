// /1.0/instances: where instances live is the database's (`instances`, node_id);
// what they are doing is the owning member's agent's (services/member, reached with
// MemberClient on the member's address). Creation places the instance (default
// policy, `?target=member|@group`), reserves its name in the database, and then, as a
// task operation, makes sure the member has the image (PullImage from a holder),
// creates it there (and starts it when asked). State changes and deletion are task
// operations forwarded to the owning member. Listings ask every member once (a short
// deadline), so an unreachable member shows its instances as Error, never hangs.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import type { DeviceConfig, InstanceStateReply } from "../../../../proto/gen/member.ts";
import { instanceEvent, requestor } from "../events/events.ts";
import { findAlias, findImage, holderStatement, imageHolders, imageProject } from "../images/images.ts";
import { agentError, agentMessage, AgentClients } from "../instances/agents.ts";
import {
  freeAgentName,
  findInstance,
  insertInstanceStatement,
  instanceView,
  listInstances,
  liveStatus,
  randomInstanceName,
  stateView,
  STOPPED,
  UNREACHABLE,
  validateInstanceName,
  type InstanceRow,
  type LiveStatus,
} from "../instances/instances.ts";
import { expand, loadExpander, type Expander } from "../instances/expand.ts";
import { instanceListing } from "../instances/listing.ts";
import { listingCollection } from "./containers.ts";
import { moveStoppedInstance } from "../evacuation/move.ts";
import { agentPoolName, ensurePool, requirePool, rootDiskPool } from "../storage/pools.ts";
import { EVACUATION_MODES } from "../../../placement/src/evacuation/plan.ts";
import { matches, parseFilter } from "../instances/filter.ts";
import { liveMembers, ownerOf, placeNewInstance, placementTurn, type LiveMember } from "../instances/placement.ts";
import { startTask } from "../operations/tasks.ts";
import { sendAsync, view } from "../operations/store.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { badBody, checkIfMatch, etagOf, queryParam, requestProject } from "./objects.ts";

const devicesSchema = z.record(z.string(), z.record(z.string(), z.string()));
const postSchema = z.object({
  name: z.string().optional(),
  description: z.string().optional(),
  architecture: z.string().optional(),
  config: z.record(z.string(), z.string()).nullish(),
  devices: devicesSchema.nullish(),
  ephemeral: z.boolean().optional(),
  profiles: z.array(z.string()).nullish(),
  stateful: z.boolean().optional(),
  type: z.string().optional(),
  instance_type: z.string().optional(),
  start: z.boolean().optional(),
  source: z
    .object({
      type: z.string().optional(),
      fingerprint: z.string().optional(),
      alias: z.string().optional(),
      server: z.string().optional(),
      properties: z.record(z.string(), z.string()).nullish(),
    })
    .passthrough(),
});
const stateSchema = z.object({
  action: z.string(),
  timeout: z.number().optional(),
  force: z.boolean().optional(),
  stateful: z.boolean().optional(),
});
const putSchema = z.object({
  description: z.string().optional(),
  config: z.record(z.string(), z.string()).nullish(),
  devices: devicesSchema.nullish(),
  profiles: z.array(z.string()).nullish(),
  ephemeral: z.boolean().optional(),
});

const moveSchema = z
  .object({
    name: z.string().optional(),
    migration: z.boolean().optional(),
    live: z.boolean().optional(),
    pool: z.string().optional(),
    project: z.string().optional(),
  })
  .passthrough();

const listQuery = z.object({ recursion: z.enum(["0", "1", "2"]).optional(), "all-projects": z.string().optional(), filter: z.string().optional() }).passthrough();

const instanceUrl = (i: { project: string; name: string }, collection: "containers" | "instances" = "instances") => `/1.0/${collection}/${encodeURIComponent(i.name)}${i.project === "default" ? "" : `?project=${encodeURIComponent(i.project)}`}`;

function toDevices(d: Record<string, Record<string, string>>): { [k: string]: DeviceConfig } {
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, { entries: v }]));
}

/** What the agent runs with: the expanded config without LXD's volatile bookkeeping. */
function agentConfig(config: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).filter(([k]) => !k.startsWith("volatile.")));
}

/** Instance config keys the cluster validates itself (LXD's words). */
function validateInstanceConfig(config: Record<string, string>): void {
  const v = config["cluster.evacuate"];
  if (v !== undefined && v !== "" && !(EVACUATION_MODES as readonly string[]).includes(v)) {
    throw ApiError.badRequest(`Invalid config: Invalid value "${v}" (not one of [${[...EVACUATION_MODES].sort().join(" ")}])`);
  }
}

export function instanceRoutes(ctx: GatewayContext) {
  const agents = new AgentClients(ctx.tls);
  const log = (line: string) => process.stderr.write(`shoal-api: ${line}\n`);
  const event = (action: string, i: { project: string; name: string }, location: string, req: FastifyRequest, context?: Record<string, unknown>): ExecStatement[] =>
    instanceEvent(action, i, location, { requestor: requestor(req), context });

  const owner = (i: InstanceRow) => ownerOf(ctx.db, i);

  /** Whether the instance is anything but stopped on its member now (an agent failure is the LXD error). */
  async function notStopped(i: InstanceRow, m: LiveMember): Promise<boolean> {
    try {
      return liveStatus(await agents.get(m.row.address).instanceState(i.agentName)).status_code !== STOPPED.status_code;
    } catch (e) {
      throw agentError(e, m.row.name);
    }
  }

  async function stateOf(i: InstanceRow, m: LiveMember | undefined): Promise<{ live: LiveStatus; state?: InstanceStateReply }> {
    if (i.power === "CREATING") return { live: STOPPED };
    if (!m || m.status === "Offline") return { live: UNREACHABLE };
    try {
      const state = await agents.get(m.row.address, true).instanceState(i.agentName);
      return { live: liveStatus(state), state };
    } catch {
      return { live: UNREACHABLE };
    }
  }

  const full = (i: InstanceRow, m: LiveMember | undefined, live: LiveStatus, expander: Expander) =>
    instanceView(i, live, m?.row.name ?? "", expander(i.project, i.profiles, i.config, i.devices));

  const instanceEtag = (i: InstanceRow) => etagOf([i.architecture, i.config, i.devices, i.ephemeral, i.profiles, i.description]);

  return async function (app: FastifyInstance) {
    app.addHook("onClose", async () => agents.close());

    app.get("/1.0/instances", async (req, reply) => {
      const q = listQuery.safeParse(req.query);
      if (!q.success) throw ApiError.badRequest("invalid recursion value");
      const all = ["true", "1"].includes(q.data["all-projects"] ?? "");
      // The project is checked (404) beside the read of its rows, not before it.
      const checked = all ? undefined : requestProject(ctx.db, req);
      const project = all ? undefined : queryParam(req, "project") || "default";
      const rows = Promise.all([listInstances(ctx.db, project), checked]).then(([r]) => r);
      const recursion = Number(q.data.recursion ?? "0");
      const filter = parseFilter(q.data.filter ?? "");
      const urlOf = (i: { project: string; name: string }) => instanceUrl(i, listingCollection(req)); // /1.0/containers lists /1.0/containers/NAME
      if (recursion === 0 && !filter.length) return sendSync(reply, (await rows).map(urlOf));
      const out = (await instanceListing(ctx, agents, rows, recursion === 2)).filter((o) => matches(o, filter));
      return sendSync(reply, recursion === 0 ? out.map(urlOf) : out);
    });

    app.post("/1.0/instances", async (req, reply) => {
      const project = await requestProject(ctx.db, req);
      const parsed = postSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const b = parsed.data;
      if (b.type === "virtual-machine") throw ApiError.badRequest("Virtual machines are not supported (containers only)");
      const sourceType = b.source.type ?? "";
      if (sourceType !== "image") throw ApiError.badRequest(sourceType === "" || sourceType === "none" ? "Creating an instance without an image is not supported yet" : `Source type "${sourceType}" is not supported yet`);
      if (b.source.server) throw ApiError.badRequest("Images from remote servers are not supported yet: import the image first (lxc image import)");
      const name = b.name || randomInstanceName();
      validateInstanceName(name);
      const imgProject = await imageProject(ctx.db, project);
      let fingerprint = b.source.fingerprint ?? "";
      if (!fingerprint && b.source.alias) fingerprint = (await findAlias(ctx.db, imgProject, b.source.alias)).fingerprint;
      if (!fingerprint) throw ApiError.badRequest("No image fingerprint or alias in the source");
      const image = await findImage(ctx.db, imgProject, fingerprint);
      const exists = await ctx.db.query("SELECT 1 FROM instances WHERE project = ? AND name = ?", [project, name]);
      if (exists.rows.length) throw new ApiError(409, `Instance "${name}" already exists`);
      const agentName = await freeAgentName(ctx.db, project, name);
      const profiles = b.profiles ?? ["default"];
      const config: Record<string, string> = { ...(b.config ?? {}) };
      validateInstanceConfig(config);
      for (const [k, v] of Object.entries(image.properties)) config[`image.${k}`] = v;
      config["volatile.base_image"] = image.fingerprint;
      const devices = b.devices ?? {};
      const expanded = await expand(ctx.db, project, profiles, config, devices);
      const pool = await requirePool(ctx.db, rootDiskPool(expanded.devices));
      if (pool.state !== "CREATED") throw ApiError.badRequest(`Storage pool "${pool.name}" is pending: create it on the whole cluster first`);
      // One placement at a time in this gateway, until the name is reserved (placementTurn).
      const release = await placementTurn();
      // The default policy, or instances.placement.scriptlet when one is set (it sees
      // the instance with its profiles applied).
      const member = await placeNewInstance(
        ctx.db,
        { project, architecture: image.architecture, target: queryParam(req, "target"), instance: { name, type: "container", config: expanded.config, devices: expanded.devices, profiles } },
        { members: ctx.members, location: ctx.serverName },
      ).catch((e: unknown) => {
        release();
        throw e;
      });
      const createdAt = new Date();
      const row: InstanceRow = {
        project,
        name,
        nodeId: member.row.nodeId,
        agentName,
        type: "container",
        architecture: image.architecture,
        description: b.description ?? "",
        ephemeral: b.ephemeral ?? false,
        config,
        devices,
        profiles,
        imageFingerprint: image.fingerprint,
        createdAt: createdAt.toISOString(),
        lastUsedAt: "",
        power: "CREATING",
        pool: pool.name,
      };
      const where = "WHERE project = ? AND name = ?";
      let created = false;
      const { op } = await startTask(ctx.db, {
        description: "Creating instance",
        project,
        location: member.row.name,
        resources: { containers: [`/1.0/containers/${name}`], instances: [`/1.0/instances/${name}`] },
        // The name is taken in the same write as the operation: a duplicate fails here.
        statements: [insertInstanceStatement(row)],
        run: async (t) => {
          const agent = agents.get(member.row.address);
          const statements: ExecStatement[] = [];
          const has = await agent.hasImage(image.fingerprint);
          if (!has.present) {
            const members = await liveMembers(ctx.db);
            const holders = (await imageHolders(ctx.db, image.fingerprint)).map((id) => members.find((m) => m.row.nodeId === id)).filter((m): m is LiveMember => !!m && m.status !== "Offline" && m.row.nodeId !== member.row.nodeId);
            if (!holders.length) throw new Error(`No online cluster member holds image ${image.fingerprint}`);
            let lastErr: unknown;
            for (const h of holders) {
              t.progress({ create_instance_from_image_unpack_progress: `Pulling image from ${h.row.name}`, progress: { stage: "create_instance_from_image_unpack", percent: "0", speed: "0" } });
              try {
                await agent.pullImage(image.fingerprint, h.row.address);
                lastErr = undefined;
                break;
              } catch (e) {
                lastErr = e;
              }
            }
            if (lastErr) throw new Error(`Failed pulling image ${image.fingerprint} to ${member.row.name}: ${agentMessage(lastErr)}`);
            statements.push(holderStatement(image.fingerprint, member.row.nodeId));
          }
          t.progress({ create_instance_from_image_unpack_progress: "Unpack: 0%", progress: { stage: "create_instance_from_image_unpack", percent: "0", speed: "0" } });
          await ensurePool(agent, pool, member.row.nodeId);
          await agent.createInstance({ name: agentName, imageFingerprint: image.fingerprint, config: agentConfig(expanded.config), devices: toDevices(expanded.devices), createdAt: createdAt.getTime(), pool: agentPoolName(pool.name) });
          created = true;
          statements.push({ sql: `UPDATE instances SET power = 'STOPPED' ${where}`, params: [project, name] }, ...event("instance-created", row, member.row.name, req, { type: "container", "storage-pool": pool.name }));
          if (b.start) {
            await agent.startInstance(agentName);
            statements.push({ sql: `UPDATE instances SET power = 'RUNNING', last_used_at = ? ${where}`, params: [new Date().toISOString(), project, name] }, ...event("instance-started", row, member.row.name, req));
          }
          return { metadata: null, statements };
        },
        onFailure: () =>
          created
            ? [{ sql: `UPDATE instances SET power = 'STOPPED' ${where}`, params: [project, name] }, ...event("instance-created", row, member.row.name, req, { type: "container" })]
            : [{ sql: `DELETE FROM instances ${where} AND power = 'CREATING'`, params: [project, name] }],
        describe: (e) => agentMessage(e),
        log,
      }).catch((e: unknown) => {
        if (/UNIQUE|constraint/i.test(String(e))) throw new ApiError(409, `Instance "${name}" already exists`);
        throw e;
      }).finally(release);
      return sendAsync(reply, view(op));
    });

    app.get("/1.0/instances/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const project = await requestProject(ctx.db, req);
      const i = await findInstance(ctx.db, project, req.params.name);
      const m = (await liveMembers(ctx.db)).find((x) => x.row.nodeId === i.nodeId);
      const { live } = await stateOf(i, m);
      return sendSync(reply, full(i, m, live, await loadExpander(ctx.db)), { etag: instanceEtag(i) });
    });

    app.get("/1.0/instances/:name/state", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const project = await requestProject(ctx.db, req);
      const i = await findInstance(ctx.db, project, req.params.name);
      const m = (await liveMembers(ctx.db)).find((x) => x.row.nodeId === i.nodeId);
      const { live, state } = await stateOf(i, m);
      return sendSync(reply, stateView(live, state));
    });

    // Listed (empty) because `lxc info` reads them (it needs container_backup); making
    // one is refused clearly, not with a bare 404.
    for (const sub of ["snapshots", "backups"]) {
      app.get(`/1.0/instances/:name/${sub}`, async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
        const project = await requestProject(ctx.db, req);
        await findInstance(ctx.db, project, req.params.name);
        return sendSync(reply, []);
      });
      app.post(`/1.0/instances/:name/${sub}`, async (req: FastifyRequest<{ Params: { name: string } }>) => {
        const project = await requestProject(ctx.db, req);
        await findInstance(ctx.db, project, req.params.name);
        throw new ApiError(501, `Instance ${sub} are not supported by this cluster yet`);
      });
    }

    app.put("/1.0/instances/:name/state", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const project = await requestProject(ctx.db, req);
      const i = await findInstance(ctx.db, project, req.params.name);
      const parsed = stateSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const { action, force = false } = parsed.data;
      const timeoutMs = (parsed.data.timeout ?? -1) > 0 ? parsed.data.timeout! * 1000 : 0;
      if (i.power === "CREATING") throw ApiError.badRequest("The instance is being created");
      const descriptions: Record<string, string> = { start: "Starting instance", stop: "Stopping instance", restart: "Restarting instance" };
      if (action === "freeze" || action === "unfreeze") throw ApiError.badRequest(`Action "${action}" is not supported yet`);
      if (!descriptions[action]) throw ApiError.badRequest(`Unknown action "${action}"`);
      const m = await owner(i);
      const agent = agents.get(m.row.address);
      const running = await notStopped(i, m);
      if (action === "start" && running) throw ApiError.badRequest("The instance is already running");
      if ((action === "stop" || action === "restart") && !running) throw ApiError.badRequest("The instance is already stopped");
      const where = "WHERE project = ? AND name = ?";
      const { op } = await startTask(ctx.db, {
        description: descriptions[action],
        project,
        location: m.row.name,
        resources: { instances: [`/1.0/instances/${i.name}`] },
        run: async () => {
          if (action === "start") {
            await agent.startInstance(i.agentName);
            return { statements: [{ sql: `UPDATE instances SET power = 'RUNNING', last_used_at = ? ${where}`, params: [new Date().toISOString(), project, i.name] }, ...event("instance-started", i, m.row.name, req)] };
          }
          if (action === "stop") {
            await agent.stopInstance(i.agentName, { timeoutMs, force });
            const stopped = event(force ? "instance-stopped" : "instance-shutdown", i, m.row.name, req);
            // An ephemeral instance is deleted once stopped (LXD's rule).
            if (i.ephemeral) return { statements: [...stopped, ...(await deleteStopped(i, m, req))] };
            return { statements: [{ sql: `UPDATE instances SET power = 'STOPPED' ${where}`, params: [project, i.name] }, ...stopped] };
          }
          await agent.restartInstance(i.agentName, { timeoutMs, force });
          return { statements: [{ sql: `UPDATE instances SET power = 'RUNNING', last_used_at = ? ${where}`, params: [new Date().toISOString(), project, i.name] }, ...event("instance-restarted", i, m.row.name, req)] };
        },
        describe: (e) => agentMessage(e),
        log,
      });
      return sendAsync(reply, view(op));
    });

    const update = async (req: FastifyRequest<{ Params: { name: string } }>, mode: "put" | "patch") => {
      const project = await requestProject(ctx.db, req);
      const i = await findInstance(ctx.db, project, req.params.name);
      checkIfMatch(req, instanceEtag(i));
      const parsed = putSchema.safeParse(req.body ?? {});
      if (!parsed.success) throw badBody(parsed.error);
      const b = parsed.data;
      // volatile.* and image.* are the cluster's bookkeeping: kept whatever the client sends back.
      const kept = Object.fromEntries(Object.entries(i.config).filter(([k]) => k.startsWith("volatile.") || k.startsWith("image.")));
      const userConfig = Object.fromEntries(Object.entries(b.config ?? {}).filter(([k, v]) => !k.startsWith("volatile.") && !k.startsWith("image.") && v !== ""));
      const base = mode === "put" ? {} : Object.fromEntries(Object.entries(i.config).filter(([k]) => !k.startsWith("volatile.") && !k.startsWith("image.")));
      if (mode === "patch") for (const [k, v] of Object.entries(b.config ?? {})) if (v === "") delete base[k];
      const config = { ...base, ...userConfig, ...kept };
      validateInstanceConfig(config);
      const devices = b.devices ?? (mode === "put" ? {} : i.devices);
      const profiles = b.profiles ?? i.profiles;
      const description = b.description ?? (mode === "put" ? "" : i.description);
      const expanded = await expand(ctx.db, project, profiles, config, devices);
      if (rootDiskPool(expanded.devices) !== i.pool) throw ApiError.badRequest(`Cannot update root disk device pool name to "${rootDiskPool(expanded.devices)}": the instance is on storage pool "${i.pool}"`);
      const m = await owner(i);
      try {
        await agents.get(m.row.address).updateInstance({ name: i.agentName, config: agentConfig(expanded.config), devices: toDevices(expanded.devices) });
      } catch (e) {
        throw agentError(e, m.row.name);
      }
      await ctx.db.exec([
        { sql: "UPDATE instances SET config = ?, devices = ?, profiles = ?, description = ? WHERE project = ? AND name = ?", params: [JSON.stringify(config), JSON.stringify(devices), JSON.stringify(profiles), description, project, i.name], expectChanges: 1 },
        ...event("instance-updated", i, m.row.name, req),
      ]);
      const { op } = await startTask(ctx.db, { description: "Updating instance", project, location: m.row.name, resources: { instances: [`/1.0/instances/${i.name}`] }, run: async () => undefined, log });
      return op;
    };
    app.put("/1.0/instances/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => sendAsync(reply, view(await update(req, "put"))));
    app.patch("/1.0/instances/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => sendAsync(reply, view(await update(req, "patch"))));

    // `lxc move NAME --target MEMBER` (5.0.2 sends {"name", "migration": true, "live": true, ...}
    // with ?target=): a stopped instance's files go to the target member's agent, then
    // the row names the target, then the source copy goes (evacuation/move.ts).
    /**
     * `lxc rename` / `lxc move OLD NEW`: a stopped instance changes its name in one
     * database write. The member keeps it under its agent name (instances.agent_name),
     * so nothing on the host moves and there is no half-renamed state.
     */
    async function rename(req: FastifyRequest, i: InstanceRow, newName: string) {
      validateInstanceName(newName);
      if (i.power === "CREATING") throw ApiError.badRequest("The instance is being created");
      const m = await owner(i);
      if (await notStopped(i, m)) throw ApiError.badRequest("Renaming of running instance not allowed");
      const taken = await ctx.db.query("SELECT 1 FROM instances WHERE project = ? AND name = ?", [i.project, newName]);
      if (taken.rows.length) throw new ApiError(409, `Name "${newName}" already in use`);
      const renamed = { ...i, name: newName };
      const { op } = await startTask(ctx.db, {
        description: "Renaming instance",
        project: i.project,
        location: m.row.name,
        resources: { containers: [`/1.0/containers/${i.name}`], instances: [`/1.0/instances/${i.name}`] },
        run: async () => {
          const statements: ExecStatement[] = [
            { sql: "UPDATE instances SET name = ? WHERE project = ? AND name = ? AND node_id = ? AND power != 'CREATING'", params: [newName, i.project, i.name, i.nodeId], expectChanges: 1 },
            ...event("instance-renamed", renamed, m.row.name, req, { old_name: i.name }),
          ];
          return { metadata: null, statements };
        },
        describe: (e) => (/UNIQUE|constraint/i.test(String(e)) ? `Name "${newName}" already in use` : agentMessage(e)),
        log,
      });
      return op;
    }

    app.post("/1.0/instances/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const project = await requestProject(ctx.db, req);
      const i = await findInstance(ctx.db, project, req.params.name);
      const parsed = moveSchema.safeParse(req.body ?? null);
      if (!parsed.success) throw badBody(parsed.error);
      const b = parsed.data;
      const targetName = queryParam(req, "target");
      if (!b.migration && b.name && b.name !== i.name) return sendAsync(reply, view(await rename(req, i, b.name)));
      if (!b.migration) throw ApiError.badRequest("Only renaming an instance or moving it to another cluster member is supported (lxc move NAME --target MEMBER)");
      if (!targetName) throw ApiError.badRequest("Migrating to another server is not supported: move within the cluster with --target MEMBER");
      if (b.name && b.name !== i.name) throw ApiError.badRequest("Renaming an instance while moving it is not supported yet");
      if (b.pool) throw ApiError.badRequest("Moving to another storage pool is not supported yet");
      if (b.project && b.project !== project) throw ApiError.badRequest("Moving to another project is not supported yet");
      if (i.power === "CREATING") throw ApiError.badRequest("The instance is being created");
      const members = await liveMembers(ctx.db);
      const to = members.find((m) => m.row.name === targetName);
      if (!to) throw ApiError.notFound("Failed to get target node: Cluster member not found");
      if (to.status === "Offline") throw ApiError.badRequest(`Target cluster member "${to.row.name}" is offline`);
      if (to.status === "Evacuated") throw ApiError.badRequest(`Target cluster member "${to.row.name}" is evacuated`);
      const from = await owner(i);
      if (from.row.nodeId === to.row.nodeId) throw ApiError.badRequest(`Instance "${i.name}" is already on cluster member "${to.row.name}"`);
      // LXD 5.0.2 tries a stateful (CRIU) stop and fails; containers cannot be live-migrated here.
      if (await notStopped(i, from)) throw ApiError.badRequest(`Instance "${i.name}" is running: stop it before moving it (containers cannot be live-migrated)`);
      const { op } = await startTask(ctx.db, {
        description: "Migrating instance",
        project,
        location: from.row.name,
        resources: { containers: [`/1.0/containers/${i.name}`], instances: [`/1.0/instances/${i.name}`] },
        run: async () => {
          await moveStoppedInstance(ctx.db, agents, i, from, to, { statements: event("instance-migrated", i, to.row.name, req, { old_location: from.row.name }) });
          return { metadata: null };
        },
        describe: (e) => agentMessage(e),
        log,
      });
      return sendAsync(reply, view(op));
    });

    /** Deletes a stopped instance on its member; returns the write that forgets it. */
    async function deleteStopped(i: InstanceRow, m: LiveMember, req: FastifyRequest): Promise<ExecStatement[]> {
      try {
        await agents.get(m.row.address).deleteInstance(i.agentName, false);
      } catch (e) {
        if ((e as { code?: number }).code !== 5 /* NOT_FOUND: already gone there */) throw e;
      }
      return [{ sql: "DELETE FROM instances WHERE project = ? AND name = ?", params: [i.project, i.name] }, ...event("instance-deleted", i, m.row.name, req)];
    }

    app.delete("/1.0/instances/:name", async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const project = await requestProject(ctx.db, req);
      const i = await findInstance(ctx.db, project, req.params.name);
      if (i.power === "CREATING") throw ApiError.badRequest("The instance is being created");
      const m = await owner(i);
      const agent = agents.get(m.row.address);
      let running = false;
      try {
        running = liveStatus(await agent.instanceState(i.agentName)).status_code !== STOPPED.status_code;
      } catch (e) {
        if ((e as { code?: number }).code !== 5 /* NOT_FOUND: already gone there */) throw agentError(e, m.row.name);
      }
      if (running) throw ApiError.badRequest("Instance is running");
      const { op } = await startTask(ctx.db, {
        description: "Deleting instance",
        project,
        location: m.row.name,
        resources: { containers: [`/1.0/containers/${i.name}`], instances: [`/1.0/instances/${i.name}`] },
        run: async () => ({ statements: await deleteStopped(i, m, req) }),
        describe: (e) => agentMessage(e),
        log,
      });
      return sendAsync(reply, view(op));
    });
  };
}

