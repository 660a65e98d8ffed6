// The older /1.0/containers API. LXD serves it as an alias of /1.0/instances (the same
// handlers; listings name their objects under the prefix that was asked for), and
// clients built on the deprecated container functions of LXD's Go client use it:
// Debian's lxd-benchmark 5.0.2 (CreateContainer, UpdateContainerState, GetContainers,
// DeleteContainer). Here a request under /1.0/containers is routed to the
// /1.0/instances handler before routing (fastify's rewriteUrl, in server.ts); the
// instances listing asks `listingCollection` which prefix its URLs take.
import type { IncomingMessage } from "node:http";
import type { FastifyRequest } from "fastify";

const CONTAINERS = /^\/1\.0\/containers(?=[/?#]|$)/;

/** The URL routed: `/1.0/containers[/…]` becomes `/1.0/instances[/…]`, anything else is unchanged. */
export function containersAsInstances(req: IncomingMessage): string {
  const url = req.url ?? "/";
  return url.replace(CONTAINERS, "/1.0/instances");
}

/** The collection a listing names its objects under: `containers` when the client asked for /1.0/containers. */
export function listingCollection(req: FastifyRequest): "containers" | "instances" {
  return CONTAINERS.test(req.originalUrl) ? "containers" : "instances";
}
