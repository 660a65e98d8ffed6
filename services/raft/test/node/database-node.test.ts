// Three database nodes on loopback (gRPC with mTLS, real WAL and fsync, SQLite),
// driven through the Database service by the cluster client.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ClusterDatabaseClient, DatabaseClientError } from "../../src/node/database-client.ts";
import { LeaderClients } from "../../src/node/leader-clients.ts";
import { LocalCluster } from "./cluster-harness.ts";
import { Role } from "../../../../proto/gen/raft.ts";

let cluster: LocalCluster;
let client: ClusterDatabaseClient;

before(async () => {
  cluster = await LocalCluster.start(["n1", "n2", "n3"], { snapshotEvery: 64, keepEntries: 8 });
  client = new ClusterDatabaseClient([...cluster.addresses.values()], cluster.tls);
  await cluster.waitFor("a leader", () => cluster.leader());
  await client.exec([{ sql: "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)" }]);
});

after(async () => {
  client.close();
  await cluster.close();
});

async function rejects(p: Promise<unknown>, code: grpc.status, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DatabaseClientError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

test("writes commit and every node reads them linearizably", async () => {
  const w = await client.exec([{ sql: "INSERT INTO kv VALUES (?, ?)", params: ["a", "1"] }]);
  assert.equal(w.results[0].changes, 1);
  for (const address of cluster.addresses.values()) {
    const c = new ClusterDatabaseClient([address], cluster.tls);
    const r = await c.query("SELECT v FROM kv WHERE k = ?", ["a"]);
    assert.deepEqual(r.rows, [["1"]], `read on ${address}`);
    const stale = await c.query("SELECT count(*) FROM kv", [], { stale: true, minIndex: w.appliedIndex });
    assert.ok(stale.appliedIndex >= w.appliedIndex);
    c.close();
  }
});

test("a write sent to a follower is forwarded to the leader", async () => {
  const leader = cluster.leader()!;
  const follower = [...cluster.nodes.values()].find((n) => n.node !== leader)!.node;
  const c = new ClusterDatabaseClient([follower.address], cluster.tls);
  const w = await c.exec([{ sql: "INSERT INTO kv VALUES ('via-follower', 'x')" }]);
  assert.equal(w.results[0].changes, 1);
  c.close();
});

test("a failed precondition aborts the whole batch and changes nothing", async () => {
  await rejects(
    client.exec([{ sql: "INSERT INTO kv VALUES ('p', 'p')" }], {
      preconditions: [{ sql: "SELECT 1 FROM kv WHERE k = 'missing'", expectRows: 1, message: "kv 'missing' must exist" }],
    }),
    grpc.status.FAILED_PRECONDITION,
    /missing/,
  );
  const r = await client.query("SELECT count(*) FROM kv WHERE k = 'p'");
  assert.deepEqual(r.rows, [[0]]);
});

test("bad SQL and non-deterministic SQL are refused with a clear error", async () => {
  await rejects(client.exec([{ sql: "INSERT INTO nope VALUES (1)" }]), grpc.status.INVALID_ARGUMENT, /no such table: nope/);
  await rejects(client.exec([{ sql: "INSERT INTO kv VALUES ('r', random())" }]), grpc.status.INVALID_ARGUMENT, /random/);
  await rejects(client.query("DELETE FROM kv"), grpc.status.INVALID_ARGUMENT, /read-only|write/i);
});

test("a retried request id is applied once and returns the first outcome", async () => {
  const first = await client.exec([{ sql: "INSERT INTO kv VALUES ('once', '1')" }], { requestId: "req-once" });
  const again = await client.exec([{ sql: "INSERT INTO kv VALUES ('once', '1')" }], { requestId: "req-once" });
  assert.equal(again.appliedIndex, first.appliedIndex);
  assert.deepEqual(again.results, first.results);
});

test("membership: a joiner enters as standby, is promoted, demoted and removed", async () => {
  const joiner = await cluster.startNode("n4");
  const admin = new LeaderClients(cluster.tls);
  const leaderAddress = cluster.leader()!.address;
  const call = <Req, Res>(method: string, req: Req) =>
    admin.call<Req, Res>(leaderAddress, method, req, new grpc.Metadata(), Date.now() + 10_000);
  await call("addNode", { id: "n4", address: cluster.addresses.get("n4"), role: Role.STANDBY });
  await cluster.waitFor("n4 to replicate", () => joiner.stateMachine.appliedIndex() >= cluster.leader()!.stateMachine.appliedIndex());
  const rows = await new ClusterDatabaseClient([joiner.address], cluster.tls).query("SELECT count(*) FROM kv", [], { stale: true });
  assert.ok(Number(rows.rows[0][0]) > 0, "the standby holds the data");
  assert.equal(joiner.roleOf("n4"), "standby");
  await call("assignRole", { id: "n4", role: Role.VOTER });
  assert.equal(cluster.leader()!.roleOf("n4"), "voter");
  await call("assignRole", { id: "n4", role: Role.STANDBY });
  await call("removeNode", { id: "n4" });
  assert.equal(cluster.leader()!.roleOf("n4"), undefined);
  await assert.rejects(call("removeNode", { id: "ghost" }), /unknown node "ghost"/);
  admin.close();
  await cluster.stopNode("n4");
});

test("a follower that was down catches up from a snapshot after compaction", async () => {
  const leader = cluster.leader()!;
  const downId = [...cluster.nodes.keys()].find((id) => cluster.nodes.get(id)!.node !== leader)!;
  await cluster.stopNode(downId);
  for (let i = 0; i < 10; i++) {
    await client.exec(Array.from({ length: 20 }, (_, j) => ({ sql: "INSERT INTO kv VALUES (?, ?)", params: [`bulk-${i}-${j}`, "v"] })));
  }
  // Enough entries for several snapshots; the log the follower needs is gone.
  for (let i = 0; i < 150; i++) await client.exec([{ sql: "INSERT INTO kv VALUES (?, 'w')", params: [`single-${i}`] }]);
  await cluster.waitFor("a snapshot on the leader", () => leader.status().snapshotIndex > 100);
  const node = await cluster.startNode(downId);
  const target = leader.stateMachine.appliedIndex();
  await cluster.waitFor("the follower to catch up", () => node.stateMachine.appliedIndex() >= target, 20_000);
  assert.equal(node.stateMachine.contentHash(), leader.stateMachine.contentHash());
});

test("after the leader stops, another is elected and no acknowledged write is lost", async () => {
  const before = await client.query("SELECT count(*) FROM kv");
  const oldLeader = cluster.leader()!;
  const oldId = oldLeader.id;
  await cluster.stopNode(oldId);
  await client.exec([{ sql: "INSERT INTO kv VALUES ('after-failover', '1')" }]);
  const r = await client.query("SELECT count(*) FROM kv");
  assert.equal(Number(r.rows[0][0]), Number(before.rows[0][0]) + 1);
  const back = await cluster.startNode(oldId);
  const target = cluster.leader()!.stateMachine.appliedIndex();
  await cluster.waitFor("the old leader to catch up", () => back.stateMachine.appliedIndex() >= target, 20_000);
  assert.equal(back.stateMachine.contentHash(), cluster.leader()!.stateMachine.contentHash());
});
