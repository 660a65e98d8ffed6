// GET / and GET/PUT/PATCH /1.0: the server object, in LXD's shape. Trusted clients
// see config and environment; untrusted ones only what LXD shows them.
import { readFileSync } from "node:fs";
import os from "node:os";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import * as grpc from "@grpc/grpc-js";
import { DatabaseClientError } from "../../../raft/src/node/database-client.ts";
import { lifecycleEvent, publishStatements, requestor } from "../events/events.ts";
import { configView, planConfigWrite, readStoredConfig, unchangedSince, type ConfigView } from "../config.ts";
import { clusterDrivers } from "../instances/agents.ts";
import { ApiError, sendSync } from "../response.ts";
import { POOL_DRIVERS } from "../storage/pools.ts";
import type { GatewayContext } from "../server.ts";

/**
 * Extensions that work end to end, and only those: the client decides what to send
 * from this list. `etag`: ETag on GET /1.0 and If-Match on PUT/PATCH /1.0 (412 when
 * stale). `patch`: PATCH /1.0. `certificate_token`: `lxc config trust add` makes a
 * trust token (a token operation) that `lxc remote add NAME TOKEN` redeems once.
 * `event_lifecycle` / `event_location`: /1.0/events carries lifecycle events, each
 * with the member (gateway) name as `location`. `projects`: /1.0/projects (CRUD and
 * rename; the client then also sends ?project= and calls /1.0/projects in remote add).
 * `storage` / `network`: the read-only storage pool and network listings the client
 * refuses to call without them. `clustering*`: membership (services/api/README.md
 * "Cluster membership"). `instances`, `container_full`, `api_filtering`,
 * `container_backup`: the instance API the client needs for launch/list/info.
 * `instances_placement_scriptlet`: new instances and evacuation targets placed by
 * `instances.placement.scriptlet`.
 */
export const API_EXTENSIONS = ["etag", "patch", "network", "storage", "event_lifecycle", "projects", "certificate_token", "event_location", "clustering", "clustering_join_token", "clustering_roles", "clustering_edit_roles", "clustering_config", "clustering_failure_domains", "clustering_sizing", "clustering_groups", "clustering_update_cert", "clustering_evacuation", "instances", "container_full", "api_filtering", "container_backup", "instances_placement_scriptlet", "directory_manipulation", "file_delete", "file_append", "file_symlinks", "file_get_symlink", "instance_file_head"];

export const SERVER_VERSION = "0.1.0";

const ARCHITECTURES: Record<string, string> = { x64: "x86_64", arm64: "aarch64", arm: "armv7l", ia32: "i686", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };

function osRelease(): { name: string; version: string } {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    const field = (k: string) => new RegExp(`^${k}="?([^"\\n]*)"?$`, "m").exec(text)?.[1] ?? "";
    return { name: field("NAME"), version: field("VERSION_ID") };
  } catch {
    return { name: "", version: "" };
  }
}

export function serverRoutes(ctx: GatewayContext) {
  const arch = ARCHITECTURES[process.arch] ?? process.arch;
  const release = osRelease();
  const derived = () => ({ "core.https_address": ctx.httpsAddress() });

  const environment = () => ({
    addresses: [ctx.httpsAddress()],
    architectures: [arch],
    certificate: ctx.cert,
    certificate_fingerprint: ctx.certFingerprint,
    // Replaced per request by what the members' agents run (clusterDrivers).
    driver: "",
    driver_version: "",
    firewall: "",
    kernel: os.type(),
    kernel_architecture: arch,
    kernel_features: {},
    kernel_version: os.release(),
    lxc_features: {},
    os_name: release.name,
    os_version: release.version,
    project: "default",
    server: "shoal",
    // Becomes true once /1.0/cluster is served.
    server_clustered: true,
    server_event_mode: "",
    server_name: ctx.serverName,
    server_pid: process.pid,
    server_version: SERVER_VERSION,
    storage: "",
    storage_version: "",
    storage_supported_drivers: POOL_DRIVERS.map((d) => ({ Name: d.name, Version: "1", Remote: d.remote })),
  });

  const currentView = async (): Promise<ConfigView> => configView(await readStoredConfig(ctx.db), derived());

  async function update(req: FastifyRequest, reply: FastifyReply, mode: "put" | "patch") {
    const view = await currentView();
    const ifMatch = req.headers["if-match"];
    if (ifMatch !== undefined && ifMatch !== "" && unquote(ifMatch) !== view.etag) {
      throw new ApiError(412, `ETag doesn't match: ${view.etag} vs ${unquote(ifMatch)}`);
    }
    const statements = await planConfigWrite(req.body, mode, view, derived());
    if (statements.length) {
      try {
        // The lifecycle event commits with the change (LXD's config-updated, source /1.0).
        const event = lifecycleEvent({ action: "config-updated", source: "/1.0", location: ctx.serverName, requestor: requestor(req) });
        await ctx.db.exec([...statements, ...publishStatements(event)], { preconditions: ifMatch ? [unchangedSince(view)] : [] });
      } catch (e) {
        if (e instanceof DatabaseClientError && e.code === grpc.status.FAILED_PRECONDITION) {
          throw new ApiError(412, "ETag doesn't match: the server configuration changed meanwhile");
        }
        throw e;
      }
    }
    return sendSync(reply, null);
  }

  return async function (app: FastifyInstance) {
    app.get("/", { config: { untrusted: true } }, async (_req, reply) => sendSync(reply, ["/1.0"]));

    app.get("/1.0", { config: { untrusted: true } }, async (req, reply) => {
      const base = { api_extensions: API_EXTENSIONS, api_status: "stable", api_version: "1.0" };
      if (!req.trusted) {
        return sendSync(reply, { ...base, auth: "untrusted", public: false, auth_methods: ["tls"] });
      }
      // From the gateway's read cache (writes below re-read the database itself).
      const [stored, drivers] = await Promise.all([
        ctx.cache.get("config", ["config"], () => readStoredConfig(ctx.db)),
        ctx.cache.get("drivers", ["members"], () => clusterDrivers(ctx.db)),
      ]);
      const view = configView(stored, derived());
      return sendSync(
        reply,
        { config: view.config, ...base, auth: "trusted", public: false, auth_methods: ["tls"], environment: { ...environment(), driver: drivers } },
        { etag: view.etag },
      );
    });

    app.put("/1.0", async (req, reply) => update(req, reply, "put"));
    app.patch("/1.0", async (req, reply) => update(req, reply, "patch"));
  };
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}
