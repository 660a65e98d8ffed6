// Failover: writers run, the leader is SIGKILLed, and we time the gap from the
// kill to the next acknowledged write. The victim is restarted and allowed to
// catch up before the next round.

import { ClusterDatabaseClient } from "../src/node/database-client.ts";
import type { BenchCluster } from "./cluster.ts";
import { now, sleep, waitUntil } from "./percentiles.ts";
import { findLeader, insertOne, waitCaughtUp } from "./workloads.ts";

export interface FailoverRound {
  victim: string;
  newLeader: string;
  /** Kill → first acknowledgement of a write issued after the kill. */
  gapMs: number;
  /** Kill → a survivor first reports itself leader (status polled every ~10 ms). */
  electedMs: number;
  /** Restart of the victim → it has applied the leader's commit index. */
  restartMs: number;
  catchUpMs: number;
  writesBefore: number;
  errors: number;
}

/** Polls the survivors until one of them says it leads in a newer term. */
async function watchElection(cluster: BenchCluster, client: ClusterDatabaseClient, victim: string, oldTerm: number, t0: number, timeoutMs: number) {
  const end = t0 + timeoutMs;
  while (now() < end) {
    const polls = cluster.nodes
      .filter((n) => n.id !== victim && n.child)
      .map(async (n) => {
        try {
          const s = await client.status(n.address);
          return s.leader === s.nodeId && s.term > oldTerm ? n.id : undefined;
        } catch {
          return undefined;
        }
      });
    const leader = (await Promise.all(polls)).find((x) => x !== undefined);
    if (leader) return { id: leader, ms: now() - t0 };
    await sleep(10);
  }
  return { id: "?", ms: Number.NaN };
}

const WRITERS = 4;

export async function failoverRound(cluster: BenchCluster, writer: number, opts: { gapLimitMs: number }): Promise<FailoverRound> {
  const admin = new ClusterDatabaseClient(cluster.addresses(), cluster.tls, 5_000);
  const leader = await findLeader(cluster, admin);
  const others = cluster.nodes.filter((n) => n.id !== leader.id).map((n) => n.address);
  // The client knows every node, the leader first (as a client that had found it would).
  const client = new ClusterDatabaseClient([leader.address, ...others], cluster.tls, 5_000);
  let acks = 0;
  let errors = 0;
  let killedAt = Number.POSITIVE_INFINITY;
  let firstAckAfterKill = Number.NaN;
  let stop = false;
  // A few sequential writers. Only writes issued after the kill count: a write in
  // flight at the kill may still be acknowledged by the dying leader.
  const writerLoop = async (w: number) => {
    const end = now() + opts.gapLimitMs + 10_000;
    for (let i = 0; !stop && now() < end && i < 100_000; i++) {
      const issued = now();
      try {
        await insertOne(client, writer + w, i);
        const t = now();
        acks++;
        if (issued > killedAt && !(t >= firstAckAfterKill)) firstAckAfterKill = t;
      } catch {
        errors++;
        await sleep(5);
      }
    }
  };
  const loop = Promise.all(Array.from({ length: WRITERS }, (_, w) => writerLoop(w)));
  try {
    await waitUntil(() => acks >= 100, 5_000);
    const writesBefore = acks;
    killedAt = now();
    cluster.kill(leader.id);
    const election = watchElection(cluster, admin, leader.id, leader.term, killedAt, opts.gapLimitMs + 5_000);
    await waitUntil(() => !Number.isNaN(firstAckAfterKill), opts.gapLimitMs + 5_000, 2);
    const elected = await election;
    stop = true;
    await loop;

    const restartAt = now();
    await cluster.startNode(leader.id);
    const restartMs = now() - restartAt;
    const catchUpMs = await waitCaughtUp(cluster, admin, leader.id);
    return {
      victim: leader.id,
      newLeader: elected.id,
      gapMs: firstAckAfterKill - killedAt,
      electedMs: elected.ms,
      restartMs,
      catchUpMs,
      writesBefore,
      errors,
    };
  } finally {
    stop = true;
    await loop;
    client.close();
    admin.close();
  }
}
