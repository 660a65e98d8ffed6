// Regression tests for behaviours of the core found wrong while writing the tests
// in this folder (each failed before its fix in services/raft/src/core).

import assert from "node:assert/strict";
import { test } from "node:test";
import { bootstrapState } from "../../src/core/bootstrap.ts";
import { RawNode } from "../../src/core/raw-node.ts";
import { emptyMessage } from "../../src/core/types.ts";
import type { Entry } from "../../src/core/types.ts";
import { Interaction } from "./interaction.ts";

const opts = (id: string) => ({ id, electionTicks: 10, heartbeatTicks: 2, random: () => 0 });
const ent = (index: number, term: number): Entry => ({ index, term, type: "normal", data: new Uint8Array() });

function run(env: Interaction, ...commands: string[]): string {
  let out = "";
  for (const c of commands) {
    const [name, ...args] = c.split(" ");
    out = env.run({ name, args });
  }
  return out;
}

test(
  "a follower whose log matches a snapshot acknowledges only what it verified, not its whole log",
  () => {
    // n2 holds 4/2 and 5/2 (which the leader also has) and then 6/2, 7/2 from an old
    // leader that the current leader (term 3) never had. It receives a snapshot at 5/2.
    const boot = bootstrapState(["n1", "n2", "n3"].map((id) => ({ id, address: id })));
    const f = new RawNode(opts("n2"), {
      hardState: { term: 2, vote: "n1", commit: 3 },
      snapshot: boot.snapshot,
      entries: [...boot.entries, ent(4, 2), ent(5, 2), ent(6, 2), ent(7, 2)],
    });
    const m = emptyMessage("snapshot", "n1", "n2", 3);
    m.snapshot = { meta: { index: 5, term: 2, config: f.raft.config }, data: new Uint8Array() };
    f.step(m);
    const rd = f.ready();
    const resp = [...rd.messages, ...rd.messagesAfterPersist].find((x) => x.type === "append-resp")!;
    // Nothing says 6/2 and 7/2 are the leader's entries: acknowledging 7 would make the
    // leader count n2 as holding its own entries 6 and 7 (commit miscount), and its
    // progress could not go below match+1 = 8 to repair them.
    assert.ok(resp.index <= 5, `acknowledged index ${resp.index}, beyond the verified 5`);
  },
);

test(
  "campaign() on a leader leaves it alone",
  () => {
    const s = new RawNode(opts("s1"), bootstrapState([{ id: "s1", address: "s1" }]));
    s.campaign();
    // A single voter leads once its vote for itself is durable: carry out the Ready.
    s.advance(s.ready());
    assert.equal(s.raft.role, "leader");
    const before = [s.raft.heartbeatElapsed, s.raft.electionElapsed];
    s.campaign();
    assert.deepEqual([s.raft.heartbeatElapsed, s.raft.electionElapsed], before);
  },
);

test(
  "every follower learns the new commit index without waiting for a heartbeat",
  () => {
    // A fresh election: n2's answer commits the no-op 4/2; n3's answer comes in
    // right after, but n3 is never told that 4 is committed until the next heartbeat.
    const env = new Interaction();
    run(env, "bootstrap n1 n2 n3", "campaign n1", "stabilize");
    const n3 = run(env, "status n3");
    assert.match(n3, /commit=4/, n3);
  },
);
