// /1.0/storage-pools (read-only for now): the `default` pool (driver dir), which the
// default profile's root disk names. Not yet a table: pools are created with the
// member agent. `?target=` names a member: only this gateway's server name is known.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { etagOf, queryParam, recursive } from "./objects.ts";

export function storagePoolRoutes(ctx: GatewayContext) {
  const target = (req: FastifyRequest): string => {
    const t = queryParam(req, "target");
    if (t !== "" && t !== ctx.serverName) throw ApiError.notFound("Cluster member not found");
    return t;
  };
  const pool = (memberView: boolean) => ({
    config: memberView ? { source: "/var/lib/lxd/storage-pools/default" } : {},
    description: "",
    name: "default",
    driver: "dir",
    used_by: ["/1.0/profiles/default"],
    status: "Created",
    locations: [ctx.serverName],
  });

  return async function (app: FastifyInstance) {
    app.get("/1.0/storage-pools", async (req, reply) => {
      const rec = recursive(req);
      const t = target(req);
      return sendSync(reply, rec ? [pool(t !== "")] : ["/1.0/storage-pools/default"]);
    });
    app.get<{ Params: { name: string } }>("/1.0/storage-pools/:name", async (req, reply) => {
      const t = target(req);
      if (req.params.name !== "default") throw ApiError.notFound("Storage pool not found");
      const p = pool(t !== "");
      return sendSync(reply, p, { etag: etagOf([p.name, p.driver, p.description, p.config]) });
    });
  };
}
