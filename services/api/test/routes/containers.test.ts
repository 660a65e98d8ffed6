// The /1.0/containers alias: which URLs are routed to /1.0/instances, and which
// collection a listing names (lxd-benchmark's end-to-end use is in
// test/instances/lxd-benchmark-lxc.test.ts).
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { test } from "node:test";
import type { FastifyRequest } from "fastify";
import { containersAsInstances, listingCollection } from "../../src/routes/containers.ts";

const routed = (url: string) => containersAsInstances({ url } as IncomingMessage);

test("/1.0/containers[/…] is routed to /1.0/instances[/…], query strings kept", () => {
  assert.equal(routed("/1.0/containers"), "/1.0/instances");
  assert.equal(routed("/1.0/containers?recursion=1&project=p1"), "/1.0/instances?recursion=1&project=p1");
  assert.equal(routed("/1.0/containers/benchmark-1"), "/1.0/instances/benchmark-1");
  assert.equal(routed("/1.0/containers/benchmark-1/state"), "/1.0/instances/benchmark-1/state");
});

test("anything else is left alone", () => {
  for (const url of ["/1.0/containersx", "/1.0/instances/containers", "/1.0/operations/x", "/containers", "/1.0/images/containers"]) assert.equal(routed(url), url);
});

test("a listing asked for under /1.0/containers names /1.0/containers/NAME", () => {
  const req = (originalUrl: string) => ({ originalUrl }) as FastifyRequest;
  assert.equal(listingCollection(req("/1.0/containers?recursion=0")), "containers");
  assert.equal(listingCollection(req("/1.0/containers")), "containers");
  assert.equal(listingCollection(req("/1.0/instances")), "instances");
});
