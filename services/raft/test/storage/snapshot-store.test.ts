import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SnapshotMeta } from "../../src/core/types.ts";
import { SnapshotStore } from "../../src/storage/snapshot-store.ts";
import { StorageCorruptionError } from "../../src/storage/corruption-error.ts";
import { tempDir } from "./tmp-dir.ts";

function meta(index: number, term = 1): SnapshotMeta {
  return { index, term, config: { members: { n1: { role: "voter", address: "10.0.0.1:8443" } } } };
}

function bytesOf(index: number, size = 100): Buffer {
  return Buffer.alloc(size, index & 0xff);
}

async function saveSnapshot(store: SnapshotStore, index: number, term = 1) {
  return store.save(meta(index, term), async (path) => {
    await Promise.resolve();
    writeFileSync(path, bytesOf(index));
  });
}

test("save publishes a snapshot that latest() returns", async (t) => {
  const dir = tempDir(t);
  const store = SnapshotStore.open(dir);
  assert.equal(store.latest(), undefined);
  const saved = await saveSnapshot(store, 10, 2);
  assert.deepEqual(saved.meta, meta(10, 2));
  const latest = store.latest();
  assert.deepEqual(latest, saved);
  assert.deepEqual(readFileSync(latest!.dataPath), bytesOf(10));
  assert.deepEqual(readdirSync(dir), ["snap-0000000000000010-0000000000000002"]);
  assert.deepEqual(SnapshotStore.open(dir).latest(), saved, "survives reopen");
});

test("only the newest snapshots are retained", async (t) => {
  const dir = tempDir(t);
  const store = SnapshotStore.open(dir);
  for (const index of [10, 30, 20, 40]) await saveSnapshot(store, index);
  assert.deepEqual(store.list().map((s) => s.meta.index), [40, 30]);
  assert.equal(readdirSync(dir).length, 2, "pruned directories are gone");

  const one = SnapshotStore.open(tempDir(t), { retain: 1 });
  await saveSnapshot(one, 1);
  await saveSnapshot(one, 2);
  assert.deepEqual(one.list().map((s) => s.meta.index), [2]);
});

test("a failing writer leaves nothing behind", async (t) => {
  const dir = tempDir(t);
  const store = SnapshotStore.open(dir);
  await saveSnapshot(store, 5);
  await assert.rejects(
    store.save(meta(6), (path) => {
      writeFileSync(path, "partial");
      throw new Error("disk full");
    }),
    /disk full/,
  );
  await assert.rejects(store.save(meta(7), () => {}), /did not create/);
  assert.equal(store.latest()?.meta.index, 5);
  assert.deepEqual(readdirSync(dir), ["snap-0000000000000005-0000000000000001"]);
});

test("an interrupted save or receive is ignored and cleaned up on open", async (t) => {
  const dir = tempDir(t);
  await saveSnapshot(SnapshotStore.open(dir), 5);
  // What a crash mid-save, mid-receive and mid-prune leaves behind.
  const leftovers = [
    "tmp-save-snap-0000000000000009-0000000000000001-1-0",
    "tmp-recv-0000000000000009-0000000000000001",
    "tmp-del-snap-0000000000000001-0000000000000001",
  ];
  for (const name of leftovers) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, "data"), "half");
  }
  const store = SnapshotStore.open(dir);
  assert.equal(store.latest()?.meta.index, 5);
  assert.deepEqual(readdirSync(dir), ["snap-0000000000000005-0000000000000001"]);
});

test("a published snapshot with a bad meta.json is reported, not skipped", async (t) => {
  const dir = tempDir(t);
  const store = SnapshotStore.open(dir);
  const saved = await saveSnapshot(store, 5);
  writeFileSync(join(saved.dataPath, "..", "meta.json"), "{ not json");
  assert.throws(() => store.latest(), StorageCorruptionError);
});

test("chunked receive refuses wrong offsets, resumes, and publishes on finish", async (t) => {
  const dir = tempDir(t);
  const store = SnapshotStore.open(dir);
  await saveSnapshot(store, 5);
  const data = Buffer.from("0123456789abcdefghij");
  const m = meta(50, 3);

  const first = store.beginReceive(m, { streamId: "leader-a/3" });
  assert.equal(first.offset, 0);
  assert.deepEqual(first.write(0, data.subarray(0, 8)), { accepted: true, offset: 8 });
  assert.deepEqual(first.write(0, data.subarray(0, 8)), { accepted: false, offset: 8 }, "duplicate refused");
  assert.deepEqual(first.write(12, data.subarray(12)), { accepted: false, offset: 8 }, "gap refused");
  assert.equal(store.latest()?.meta.index, 5, "nothing published before finish");
  assert.ok(!existsSync(join(dir, "snap-0000000000000050-0000000000000003")));

  // The connection drops; the leader starts over and learns where to resume.
  const resumed = store.beginReceive(m, { streamId: "leader-a/3" });
  assert.equal(resumed.offset, 8);
  assert.throws(() => first.write(8, data.subarray(8)), /superseded/);
  assert.deepEqual(resumed.write(8, data.subarray(8, 15)), { accepted: true, offset: 15 });
  assert.deepEqual(resumed.write(15, data.subarray(15)), { accepted: true, offset: 20 });

  const published = resumed.finish();
  assert.deepEqual(published.meta, m);
  assert.deepEqual(store.latest(), published);
  assert.deepEqual(readFileSync(published.dataPath), data);
  assert.deepEqual(readdirSync(join(published.dataPath, "..")).sort(), ["data", "meta.json"]);
  assert.deepEqual(readdirSync(dir).sort(), ["snap-0000000000000005-0000000000000001", "snap-0000000000000050-0000000000000003"]);
  assert.throws(() => resumed.write(20, Buffer.from("x")), /finished/);
});

test("a receive from a different stream starts over", (t) => {
  const store = SnapshotStore.open(tempDir(t));
  const m = meta(7);
  store.beginReceive(m, { streamId: "leader-a/3" }).write(0, Buffer.from("aaaa"));
  const other = store.beginReceive(m, { streamId: "leader-b/4" });
  assert.equal(other.offset, 0);
  other.write(0, Buffer.from("bb"));
  assert.deepEqual(readFileSync(other.finish().dataPath), Buffer.from("bb"));
});

test("abort drops the partial snapshot", (t) => {
  const dir = tempDir(t);
  const store = SnapshotStore.open(dir);
  const receiver = store.beginReceive(meta(9));
  receiver.write(0, Buffer.from("partial"));
  receiver.abort();
  receiver.abort();
  assert.deepEqual(readdirSync(dir), []);
  assert.equal(store.latest(), undefined);
  assert.equal(store.beginReceive(meta(9)).offset, 0);
});

test("openForSend streams a snapshot into a receiver byte for byte", async (t) => {
  const store = SnapshotStore.open(tempDir(t));
  const payload = Buffer.alloc(1000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  await store.save(meta(100, 4), (path) => writeFileSync(path, payload));
  assert.throws(() => store.openForSend(meta(99)), /no snapshot/);

  const source = store.openForSend(meta(100, 4));
  t.after(() => source.close());
  assert.equal(source.size, 1000);
  assert.deepEqual(source.read(990, 64), payload.subarray(990));
  assert.equal(source.read(1000, 64).length, 0);

  const peer = SnapshotStore.open(tempDir(t));
  const receiver = peer.beginReceive(source.meta);
  while (receiver.offset < source.size) {
    const progress = receiver.write(receiver.offset, source.read(receiver.offset, 64));
    assert.ok(progress.accepted);
  }
  const received = receiver.finish();
  assert.deepEqual(received.meta, meta(100, 4));
  assert.deepEqual(readFileSync(received.dataPath), payload);
});

test("a snapshot being sent survives being pruned", async (t) => {
  const store = SnapshotStore.open(tempDir(t), { retain: 1 });
  await saveSnapshot(store, 1);
  const source = store.openForSend(meta(1));
  await saveSnapshot(store, 2);
  assert.deepEqual(source.read(0, 1000), bytesOf(1));
  source.close();
});
