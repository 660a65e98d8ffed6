import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChangeEvent, WatchHub } from "../../src/node/watch-hub.ts";
import { applyNext, batch, machineWithSchema } from "../db/helpers.ts";

const insert = (id: number) => ({ sql: "INSERT INTO members (id, name, address) VALUES (?, ?, ?)", params: [id, `m${id}`, "a"] });

test("the watch window keeps only writes that changed data, without their results", () => {
  const sm = machineWithSchema();
  const hub = new WatchHub(sm);
  const start = sm.appliedIndex();
  applyNext(sm, batch([insert(1), insert(2)], [], "w1"));
  applyNext(sm, batch([insert(1)], [], "w-fails")); // UNIQUE violation: nothing changed
  applyNext(sm, batch([insert(3)], [], "w1")); // a duplicate of w1: nothing ran
  sm.apply(sm.appliedIndex() + 1, 1, new Uint8Array()); // a leader's no-op
  applyNext(sm, batch(["UPDATE members SET address = 'b'"], [], "w2"));
  const seen: ChangeEvent[] = [];
  hub.subscribe(start, (e) => seen.push(e));
  assert.deepEqual(seen, [
    { index: start + 1, requestId: "w1", tables: ["members"] },
    { index: start + 5, requestId: "w2", tables: ["members"] },
  ]);
  hub.close();
});

test("a watcher resumes from any index after the last change dropped from the window", () => {
  const sm = machineWithSchema();
  const hub = new WatchHub(sm, 2);
  const start = sm.appliedIndex();
  for (let i = 1; i <= 4; i++) {
    applyNext(sm, batch([insert(i)], [], `w${i}`));
    sm.apply(sm.appliedIndex() + 1, 1, new Uint8Array()); // no-ops between the changes
  }
  // 4 changes > 1.5 x 2: the first two (at start+1 and start+3) are dropped.
  const from = (index: number) => {
    const ids: string[] = [];
    hub.subscribe(index, (e) => ids.push(e.requestId))();
    return ids;
  };
  assert.throws(() => from(start + 2), /no longer kept; the oldest kept is/);
  assert.deepEqual(from(start + 3), ["w3", "w4"]);
  assert.deepEqual(from(start + 6), ["w4"]);
  hub.close();
});
