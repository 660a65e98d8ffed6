import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { emptyMessage, type Message } from "../../src/core/types.ts";
import * as pb from "../../../../proto/gen/raft.ts";
import { generateCertificate } from "../../src/transport/certificate.ts";
import type { PeerCertificate } from "node:tls";
import { X509Certificate } from "node:crypto";
import { clientCredentials, CLIENT_CHANNEL_OPTIONS, pinnedIdentityCheck } from "../../src/transport/credentials.ts";
import { clusterCert, connect, startNode, waitFor, type TestNode } from "./helpers.ts";

function heartbeat(from: string, to: string, context: number): Message {
  const m = emptyMessage("heartbeat", from, to, 1);
  m.context = context;
  return m;
}

/** The status code of a SnapshotOffset call (missing meta) made with the given client certificate. */
async function offsetCallCode(address: string, cert: string, key: string): Promise<grpc.status | undefined> {
  const ca = (await clusterCert()).cert;
  const client = new pb.RaftTransportClient(address, clientCredentials({ cert, key, ca }), CLIENT_CHANNEL_OPTIONS);
  try {
    return await new Promise((resolve) =>
      client.snapshotOffset({ from: "a", to: "b", meta: undefined, totalSize: 0 }, (e) => resolve(e?.code)),
    );
  } finally {
    client.close();
  }
}

function countResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

async function closeAll(nodes: TestNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.transport.close()));
}

test("three transports exchange message batches over mTLS, in order", async () => {
  const nodes = await Promise.all(["a", "b", "c"].map((id) => startNode(id)));
  const [a, b, c] = nodes;
  try {
    connect(nodes);
    const toB: Message[] = [];
    const toC: Message[] = [];
    for (let i = 0; i < 300; i++) {
      toB.push(heartbeat("a", "b", i));
      toC.push(heartbeat("a", "c", i));
    }
    const append = emptyMessage("append", "a", "b", 2);
    append.entries = [{ index: 1, term: 2, type: "normal", data: new Uint8Array(100_000).fill(7) }];
    toB.push(append);
    // Interleaved in one call, then more in a later tick: grouping must keep per-peer order.
    a.transport.send(toB.slice(0, 150).flatMap((m, i) => [m, toC[i]]));
    setImmediate(() => a.transport.send([...toB.slice(150), ...toC.slice(150)]));
    b.transport.send([heartbeat("b", "a", 1), heartbeat("b", "c", 2)]);
    c.transport.send([heartbeat("c", "a", 3)]);

    await waitFor(() => b.received.length === toB.length && c.received.length === 301, "delivery");
    await waitFor(() => a.received.length === 2, "replies to a");
    assert.deepStrictEqual(b.received, toB);
    assert.deepStrictEqual(c.received.filter((m) => m.from === "a"), toC);
    assert.deepStrictEqual(c.received.find((m) => m.from === "b"), heartbeat("b", "c", 2));
    assert.deepStrictEqual(new Set(a.received.map((m) => m.from)), new Set(["b", "c"]));
    assert.equal(a.transport.stats().peers["b"].sent, toB.length);
    assert.equal(a.transport.stats().peers["b"].dropped, 0);
    assert.deepStrictEqual(a.unreachable, []);
  } finally {
    await closeAll(nodes);
  }
});

test("a client with an untrusted certificate is refused", async () => {
  const b = await startNode("b");
  const rogueCert = await generateCertificate({ commonName: "rogue" });
  const cluster = await clusterCert();
  // It trusts the cluster certificate but presents its own: the server must refuse it.
  const rogue = await startNode("a", {}, { cert: rogueCert.cert, key: rogueCert.key, ca: cluster.cert });
  try {
    rogue.transport.setPeers(new Map([["b", b.transport.address]]));
    rogue.transport.send([heartbeat("a", "b", 1)]);
    await waitFor(() => rogue.unreachable.includes("b"), "rogue stream to fail");
    assert.deepStrictEqual(b.received, []);

    // The same call with the cluster certificate gets through (and fails on its merits).
    assert.equal(await offsetCallCode(b.transport.address, rogueCert.cert, rogueCert.key), grpc.status.UNAVAILABLE);
    assert.equal(await offsetCallCode(b.transport.address, cluster.cert, cluster.key), grpc.status.INVALID_ARGUMENT);
  } finally {
    await closeAll([b, rogue]);
  }
});

test("a server with an untrusted certificate is refused by clients", async () => {
  const rogueCert = await generateCertificate({ commonName: "rogue" });
  const cluster = await clusterCert();
  // The rogue server would accept our client certificate; our client must still refuse it.
  const rogue = await startNode("b", {}, { cert: rogueCert.cert, key: rogueCert.key, ca: cluster.cert });
  const a = await startNode("a");
  try {
    a.transport.setPeers(new Map([["b", rogue.transport.address]]));
    a.transport.send([heartbeat("a", "b", 1)]);
    await waitFor(() => a.unreachable.includes("b"), "stream to rogue server to fail");
    assert.deepStrictEqual(rogue.received, []);
  } finally {
    await closeAll([a, rogue]);
  }
});

test("servers are pinned by fingerprint, whatever the host name", async () => {
  const cluster = await clusterCert();
  const other = await generateCertificate({ commonName: "other" });
  const check = pinnedIdentityCheck(cluster.cert + other.cert);
  const peer = (pem: string) => ({ raw: new X509Certificate(pem).raw }) as PeerCertificate;
  assert.equal(check("anything", peer(cluster.cert)), undefined);
  assert.equal(check("127.0.0.1", peer(other.cert)), undefined);
  const third = await generateCertificate({ commonName: "third" });
  assert.match(String(pinnedIdentityCheck(cluster.cert)("shoal", peer(third.cert))), /untrusted server certificate [0-9a-f]{64}/);
});

test("a full queue drops messages and counts them; unknown peers are counted too", async () => {
  const [a, b] = await Promise.all([startNode("a", { maxQueue: 10 }), startNode("b")]);
  try {
    connect([a, b]);
    a.transport.send(Array.from({ length: 25 }, (_, i) => heartbeat("a", "b", i)));
    a.transport.send([heartbeat("a", "nobody", 0)]);
    await waitFor(() => b.received.length === 10, "the queued ten");
    assert.deepStrictEqual(
      b.received.map((m) => m.context),
      Array.from({ length: 10 }, (_, i) => i),
    );
    const stats = a.transport.stats();
    assert.equal(stats.peers["b"].dropped, 15);
    assert.equal(stats.unknownDestination, 1);
  } finally {
    await closeAll([a, b]);
  }
});

test("the filter drops messages in both directions", async () => {
  const nodes = await Promise.all(["a", "b", "c"].map((id) => startNode(id)));
  const [a, b, c] = nodes;
  try {
    connect(nodes);
    a.transport.setFilter((m) => m.to !== "c" && m.from !== "c"); // a is cut off from c
    a.transport.send([heartbeat("a", "b", 1), heartbeat("a", "c", 2)]);
    c.transport.send([heartbeat("c", "a", 3), heartbeat("c", "b", 4)]);
    await waitFor(() => b.received.length === 2, "b gets both");
    await new Promise((r) => setTimeout(r, 50));
    assert.deepStrictEqual(c.received, []);
    assert.deepStrictEqual(a.received, []);
    assert.equal(a.transport.stats().filtered, 2);

    a.transport.setFilter(undefined); // healed
    c.transport.send([heartbeat("c", "a", 5)]);
    await waitFor(() => a.received.length === 1, "a hears c again");
  } finally {
    await closeAll(nodes);
  }
});

test("a peer that restarts is reported unreachable, then reached again", async () => {
  const a = await startNode("a", { backoffInitialMs: 20, backoffMaxMs: 100 });
  let b = await startNode("b");
  const address = b.transport.address;
  try {
    connect([a, b]);
    a.transport.send([heartbeat("a", "b", 1)]);
    await waitFor(() => b.received.length === 1, "first delivery");
    await b.transport.close();
    await waitFor(() => a.unreachable.includes("b"), "unreachable report");

    b = await startNode("b", { listenAddress: address });
    let n = 0;
    // Raft keeps sending heartbeats; model that until one lands.
    await waitFor(() => {
      a.transport.send([heartbeat("a", "b", ++n)]);
      return b.received.length > 0;
    }, "delivery after restart");
  } finally {
    await closeAll([a, b]);
  }
});

test("close() is idempotent and leaves no sockets or timers behind", async () => {
  const before = countResources();
  const nodes = await Promise.all(["a", "b", "c"].map((id) => startNode(id)));
  connect(nodes);
  nodes[0].transport.send([heartbeat("a", "b", 1), heartbeat("a", "c", 1)]);
  await waitFor(() => nodes[1].received.length === 1 && nodes[2].received.length === 1, "delivery");
  const started = Date.now();
  await closeAll(nodes);
  await closeAll(nodes);
  assert.ok(Date.now() - started < 400, `graceful close took ${Date.now() - started} ms`);
  await new Promise((r) => setTimeout(r, 20));
  const after = countResources();
  for (const [kind, n] of Object.entries(after)) assert.ok(n <= (before[kind] ?? 0), `${kind} left behind`);
});

test("a Send stream gets its headers as soon as it opens (the client then stops keeping written messages for retries)", async () => {
  const a = await startNode("a");
  const { cert, key } = await clusterCert();
  const client = new pb.RaftTransportClient(a.transport.address, clientCredentials({ cert, key, ca: cert }), CLIENT_CHANNEL_OPTIONS);
  try {
    const stream = client.send(() => undefined);
    stream.on("error", () => undefined);
    let headers = false;
    stream.on("metadata", () => (headers = true));
    await waitFor(() => headers, "the Send stream's headers");
    stream.cancel();
  } finally {
    client.close();
    await closeAll([a]);
  }
});
