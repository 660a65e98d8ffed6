// The Database service's other calls: migrations, watch, status, lookup and
// leadership transfer, on three in-process nodes.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type * as pb from "../../../../proto/gen/database.ts";
import { Role } from "../../../../proto/gen/raft.ts";
import { ClusterDatabaseClient } from "../../src/node/database-client.ts";
import { LeaderClients } from "../../src/node/leader-clients.ts";
import { LocalCluster } from "./cluster-harness.ts";

let cluster: LocalCluster;
let client: ClusterDatabaseClient;
let raw: LeaderClients;

before(async () => {
  cluster = await LocalCluster.start(["n1", "n2", "n3"]);
  client = new ClusterDatabaseClient([...cluster.addresses.values()], cluster.tls);
  raw = new LeaderClients(cluster.tls);
  await cluster.waitFor("a leader", () => cluster.leader());
});

after(async () => {
  raw.close();
  client.close();
  await cluster.close();
});

/** Calls a method on a follower, so forwarding is exercised too. */
function follower(): string {
  const leader = cluster.leader()!;
  return [...cluster.nodes.values()].map((n) => n.node).find((n) => n !== leader)!.address;
}

function call<Req, Res>(method: string, req: Req, address = follower()): Promise<Res> {
  return raw.call<Req, Res>(address, method, req, new grpc.Metadata(), Date.now() + 10_000);
}

const migrations: pb.Migration[] = [
  { version: 1, statements: ["CREATE TABLE members (name TEXT PRIMARY KEY, address TEXT NOT NULL)"] },
  { version: 2, statements: ["ALTER TABLE members ADD COLUMN description TEXT NOT NULL DEFAULT ''", "CREATE INDEX members_by_address ON members (address)"] },
];

test("migrations run once, in order, through the log, on every node", async () => {
  const first = await call<pb.MigrateRequest, pb.MigrateReply>("migrate", { requestId: "m", migrations });
  assert.deepEqual([first.fromVersion, first.toVersion], [0, 2]);
  const again = await call<pb.MigrateRequest, pb.MigrateReply>("migrate", { requestId: "m2", migrations });
  assert.deepEqual([again.fromVersion, again.toVersion], [2, 2]);
  await cluster.waitFor("every node at schema 2", () => [...cluster.nodes.values()].every((n) => n.node.stateMachine.schemaVersion() === 2));
  await assert.rejects(
    call<pb.MigrateRequest, pb.MigrateReply>("migrate", { requestId: "old", migrations: migrations.slice(0, 1) }),
    (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION && /newer than this caller knows/.test(e.details),
  );
});

test("watch streams committed writes with the tables they changed", async () => {
  const dbClient = raw.client(follower());
  const events: pb.WatchEvent[] = [];
  const stream = dbClient.watch({ fromIndex: 0 });
  stream.on("data", (e: pb.WatchEvent) => events.push(e));
  stream.on("error", () => undefined);
  await new Promise((r) => setTimeout(r, 100));
  await client.exec([{ sql: "INSERT INTO members (name, address) VALUES ('m1', '10.0.0.1')" }], { requestId: "watch-1" });
  await cluster.waitFor("the watch event", () => events.find((e) => e.requestId === "watch-1"));
  const e = events.find((x) => x.requestId === "watch-1")!;
  assert.deepEqual(e.tables, ["members"]);
  stream.cancel();
});

test("status names the leader and the role of every node", async () => {
  const s = await call<pb.StatusRequest, pb.StatusReply>("status", {});
  assert.equal(s.leader, cluster.leader()!.id);
  assert.deepEqual(s.nodes.map((n) => [n.id, n.role]).sort(), [["n1", Role.VOTER], ["n2", Role.VOTER], ["n3", Role.VOTER]]);
  assert.ok(s.appliedIndex > 0 && s.commitIndex >= s.appliedIndex);
});

test("lookup tells whether a request id committed", async () => {
  await client.exec([{ sql: "INSERT INTO members (name, address) VALUES ('m2', '10.0.0.2')" }], { requestId: "lookup-me" });
  const yes = await call<pb.LookupRequest, pb.LookupReply>("lookup", { requestId: "lookup-me" });
  assert.equal(yes.committed, true);
  assert.ok(yes.index > 0);
  const no = await call<pb.LookupRequest, pb.LookupReply>("lookup", { requestId: "never-sent" });
  assert.equal(no.committed, false);
});

test("leadership moves where it is asked to and writes go on", async () => {
  const old = cluster.leader()!.id;
  const to = [...cluster.nodes.keys()].find((id) => id !== old)!;
  const reply = await call<pb.TransferLeadershipRequest, pb.TransferLeadershipReply>("transferLeadership", { to });
  assert.equal(reply.leader, to);
  await client.exec([{ sql: "INSERT INTO members (name, address) VALUES ('m3', '10.0.0.3')" }]);
  await assert.rejects(
    call("transferLeadership", { to: "nobody" }),
    (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
  );
});

test("removing the last voter of a one-node group is refused and changes nothing", async () => {
  const solo = await LocalCluster.start(["solo"]);
  try {
    await solo.waitFor("a leader", () => solo.leader());
    const c = new LeaderClients(solo.tls);
    await assert.rejects(
      c.call(solo.addresses.get("solo")!, "removeNode", { id: "solo" }, new grpc.Metadata(), Date.now() + 5_000),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /no other voter/.test(e.details),
    );
    await assert.rejects(
      c.call(solo.addresses.get("solo")!, "assignRole", { id: "solo", role: Role.STANDBY }, new grpc.Metadata(), Date.now() + 5_000),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
    );
    assert.equal(solo.leader()!.roleOf("solo"), "voter");
    c.close();
  } finally {
    await solo.close();
  }
});
