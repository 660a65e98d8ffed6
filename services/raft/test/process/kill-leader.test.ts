// Three database node processes on loopback. Writers run while the leader is
// SIGKILLed and later restarted; every write a writer saw acknowledged must be on
// all three nodes once they converge.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ClusterDatabaseClient } from "../../src/node/database-client.ts";
import { ProcessCluster } from "../support/node-processes.ts";

let cluster: ProcessCluster;
let client: ClusterDatabaseClient;

before(async () => {
  cluster = await ProcessCluster.start(["n1", "n2", "n3"], ["--tick-ms", "50", "--snapshot-every", "500"]);
  client = new ClusterDatabaseClient(cluster.addresses(), cluster.tls, 30_000);
  await client.exec([{ sql: "CREATE TABLE acked (k TEXT PRIMARY KEY, writer INTEGER NOT NULL)" }]);
});

after(async () => {
  client?.close();
  await cluster?.destroy();
});

async function leaderId(): Promise<string> {
  for (let i = 0; i < 100; i++) {
    for (const address of cluster.addresses()) {
      try {
        const s = await client.status(address);
        if (s.leader && s.leader === s.nodeId) return s.leader;
      } catch {
        // that node is down
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no leader");
}

test("no acknowledged write is lost when the leader is SIGKILLed and restarted", async () => {
  const acknowledged: string[] = [];
  let stop = false;
  const writer = async (w: number) => {
    for (let i = 0; !stop && i < 5_000; i++) {
      const k = `w${w}-${i}`;
      await client.exec([{ sql: "INSERT INTO acked VALUES (?, ?)", params: [k, w] }], { requestId: `req-${k}` });
      acknowledged.push(k);
    }
  };
  const writers = Array.from({ length: 4 }, (_, w) => writer(w));

  await new Promise((r) => setTimeout(r, 1_000));
  const victim = await leaderId();
  const ackedAtKill = acknowledged.length;
  cluster.kill(victim);
  await new Promise((r) => setTimeout(r, 2_000));
  const ackedWhileDown = acknowledged.length - ackedAtKill;
  await cluster.startNode(victim);
  await new Promise((r) => setTimeout(r, 1_000));
  stop = true;
  await Promise.all(writers);
  assert.ok(ackedAtKill > 10, `writes before the kill: ${ackedAtKill}`);
  assert.ok(ackedWhileDown > 10, `writes acknowledged while the old leader was down: ${ackedWhileDown}`);

  // Converge: every node reaches the same applied index.
  let target = 0;
  for (const address of cluster.addresses()) target = Math.max(target, (await client.status(address)).commitIndex);
  for (const address of cluster.addresses()) {
    const one = new ClusterDatabaseClient([address], cluster.tls, 30_000);
    const rows = await one.query("SELECT k FROM acked", [], { stale: true, minIndex: target });
    const present = new Set(rows.rows.map((r) => String(r[0])));
    const missing = acknowledged.filter((k) => !present.has(k));
    assert.deepEqual(missing, [], `acknowledged writes missing on ${address}`);
    one.close();
  }
});
