// The gateway's read cache: nothing is served from memory unless the Watch stream
// is live; a change to a table drops what was read from it (and loads again what was
// read recently); a load that raced a change is not kept; a reset (stream broken)
// empties everything.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PREFETCH_WINDOW_MS, ReadCache, type WatchSource } from "../../src/cache/read-cache.ts";
import type { WatchEvent } from "../../../../proto/gen/database.ts";

function fakeSource() {
  let h: Parameters<WatchSource["watch"]>[0] | undefined;
  const source: WatchSource = {
    watch: (handlers) => {
      h = handlers;
      handlers.onReset();
      return () => undefined;
    },
  };
  return {
    source,
    live: () => h!.onLive(),
    reset: () => h!.onReset(),
    change: (tables: string[]) => h!.onChange({ index: 1, requestId: "", tables } as WatchEvent),
  };
}

test("read cache: live stream only, invalidation by table, races and resets", async () => {
  const f = fakeSource();
  const cache = new ReadCache(f.source);
  let loads = 0;
  const load = async () => ++loads;

  assert.equal(await cache.get("k", ["config"], load), 1);
  assert.equal(await cache.get("k", ["config"], load), 2, "not live yet: every read loads");

  f.live();
  assert.equal(await cache.get("k", ["config"], load), 3);
  assert.equal(await cache.get("k", ["config"], load), 3, "live: served from memory");
  f.change(["members"]);
  assert.equal(await cache.get("k", ["config"], load), 3, "another table changed");
  f.change(["config"]);
  assert.equal(await cache.get("k", ["config"], load), 4, "its table changed: loaded again");

  // A change while a load is in flight: that answer is not kept, and no second load
  // starts until it settles; then the key (read recently) is loaded again in the background.
  const pending: ((v: number) => void)[] = [];
  const slow = cache.get("s", ["members"], () => new Promise<number>((r) => pending.push(r)));
  f.change(["members"]);
  assert.equal(pending.length, 1);
  pending[0](10);
  assert.equal(await slow, 10);
  await new Promise((r) => setImmediate(r));
  assert.equal(pending.length, 2, "loaded again after the change");
  pending[1](11);
  assert.equal(await cache.get("s", ["members"], async () => 99), 11, "served from the background load");

  cache.clear();
  assert.equal(await cache.get("k", ["config"], load), 5, "a local write clears everything");
  f.reset();
  assert.equal(await cache.get("k", ["config"], load), 6);
  assert.equal(await cache.get("k", ["config"], load), 7, "after a reset nothing is cached until live again");

  // A change reloads what was read recently, before anyone asks again; not what was read long ago.
  f.live();
  assert.equal(await cache.get("k", ["config"], load), 8);
  f.change(["config"]);
  assert.equal(loads, 9, "reloaded at once, in the background");
  assert.equal(await cache.get("k", ["config"], load), 9);
  const now = Date.now;
  Date.now = () => now() + PREFETCH_WINDOW_MS + 1;
  try {
    f.change(["config"]);
    assert.equal(loads, 9, "not read for a while: left until asked");
  } finally {
    Date.now = now;
  }
  assert.equal(await cache.get("k", ["config"], load), 10);

  const seen: string[][] = [];
  cache.onChange((t) => seen.push([...t]));
  f.change(["certificates"]);
  assert.deepEqual(seen, [["certificates"]]);
  cache.close();
});
