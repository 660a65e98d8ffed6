// /1.0/networks (read-only for now): no managed networks yet, so, as LXD without
// managed networks, the gateway host's interfaces are listed as unmanaged.
// Unknown names → 404 `Network not found`; `?project=` must name a project.
import os from "node:os";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { etagOf, queryParam, recursive, requestProject } from "./objects.ts";

interface Network {
  config: Record<string, string>;
  description: string;
  name: string;
  type: string;
  used_by: string[];
  managed: boolean;
  status: string;
  locations: string[] | null;
}

function hostNetworks(): Network[] {
  return Object.keys(os.networkInterfaces())
    .sort()
    .map((name) => ({
      config: {},
      description: "",
      name,
      type: name === "lo" ? "loopback" : "physical",
      used_by: [],
      managed: false,
      status: "",
      locations: null,
    }));
}

export function networkRoutes(ctx: GatewayContext) {
  const check = async (req: FastifyRequest) => {
    await requestProject(ctx.db, req);
    const t = queryParam(req, "target");
    if (t !== "" && t !== ctx.serverName) throw ApiError.notFound("Cluster member not found");
  };
  return async function (app: FastifyInstance) {
    app.get("/1.0/networks", async (req, reply) => {
      const rec = recursive(req);
      await check(req);
      const all = hostNetworks();
      return sendSync(reply, rec ? all : all.map((n) => `/1.0/networks/${encodeURIComponent(n.name)}`));
    });
    app.get<{ Params: { name: string } }>("/1.0/networks/:name", async (req, reply) => {
      await check(req);
      const n = hostNetworks().find((x) => x.name === req.params.name);
      if (!n) throw ApiError.notFound("Network not found");
      return sendSync(reply, n, { etag: etagOf([n.name, n.managed, n.type, n.description, n.config]) });
    });
  };
}
