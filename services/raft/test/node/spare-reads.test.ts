// A spare holds no replica: a read sent to it must not wait for a log it never
// receives (the client's deadline here is the bound). The demoted node never hears of
// its demotion (spares get no messages): it answers "unavailable" once it has known no
// leader for two election timeouts, or forwards while it still knows one.
// (Seen in the member processes: a demoted leader kept receiving its clients' reads and
// every one waited for the attempt deadline.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { Role } from "../../../../proto/gen/raft.ts";
import { ClusterDatabaseClient } from "../../src/node/database-client.ts";
import { LocalCluster } from "./cluster-harness.ts";

test("reads sent to a spare are answered by the leader, with the latest writes", async () => {
  const c = await LocalCluster.start(["a", "b", "c"]);
  try {
    const leader = await c.waitFor("a leader", () => [...c.nodes.entries()].find(([, n]) => n.node.isLeader())?.[0]);
    const spare = ["a", "b", "c"].find((x) => x !== leader)!;
    const all = new ClusterDatabaseClient([...c.addresses.values()], c.tls);
    await all.exec([{ sql: "CREATE TABLE t (x INTEGER)" }]);
    await all.assignRole(spare, Role.SPARE);
    await all.exec([{ sql: "INSERT INTO t VALUES (42)" }]);

    // A client that asks the spare first: the spare must send it on (forwarding, or
    // "unavailable" soon enough for the client to try the next node within its deadline).
    const viaSpare = new ClusterDatabaseClient([c.addresses.get(spare)!, c.addresses.get(leader)!], c.tls, 5_000);
    const r = await viaSpare.query("SELECT x FROM t");
    assert.deepEqual(r.rows, [[42]]);
    const stale = await viaSpare.query("SELECT count(*) FROM t", [], { stale: true });
    assert.deepEqual(stale.rows, [[1]]);
    viaSpare.close();
    all.close();
  } finally {
    await c.close();
  }
});
