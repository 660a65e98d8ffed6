// placementTurn: one placement at a time in a gateway, in arrival order, each turn
// held until its release (the reservation written).
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { placementTurn } from "../../src/instances/placement.ts";

test("turns are taken one at a time, in order; a release lets the next one in", async () => {
  const log: string[] = [];
  let inside = 0;
  const place = async (name: string, ms: number) => {
    const release = await placementTurn();
    inside++;
    assert.equal(inside, 1, `${name} placed while another placement held its turn`);
    log.push(name);
    await sleep(ms);
    inside--;
    release();
    release(); // a second release changes nothing
  };
  await Promise.all([place("a", 20), place("b", 1), place("c", 5)]);
  assert.deepEqual(log, ["a", "b", "c"]);
});

test("a turn whose holder failed and released does not block the next one", async () => {
  const first = await placementTurn();
  const second = placementTurn();
  first();
  (await second)();
  (await placementTurn())();
});
