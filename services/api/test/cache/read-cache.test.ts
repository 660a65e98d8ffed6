// The gateway's read cache: nothing is served from memory unless the Watch stream
// is live; a change to a table drops what was read from it; a load that raced a
// change is not kept; a reset (stream broken) empties everything.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ReadCache, type WatchSource } from "../../src/cache/read-cache.ts";
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

  // A change while a load is in flight: that answer is not kept.
  let release: (v: number) => void = () => undefined;
  const slow = cache.get("s", ["members"], () => new Promise<number>((r) => (release = r)));
  f.change(["members"]);
  release(10);
  assert.equal(await slow, 10);
  assert.equal(await cache.get("s", ["members"], async () => 11), 11);

  cache.clear();
  assert.equal(await cache.get("k", ["config"], load), 5, "a local write clears everything");
  f.reset();
  assert.equal(await cache.get("k", ["config"], load), 6);
  assert.equal(await cache.get("k", ["config"], load), 7, "after a reset nothing is cached until live again");

  const seen: string[][] = [];
  cache.onChange((t) => seen.push([...t]));
  f.change(["certificates"]);
  assert.deepEqual(seen, [["certificates"]]);
  cache.close();
});
