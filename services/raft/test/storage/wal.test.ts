import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Wal } from "../../src/storage/wal.ts";
import { StorageCorruptionError } from "../../src/storage/corruption-error.ts";
import { entries, entry, recordBounds, segmentFiles } from "./wal-helpers.ts";
import { tempDir } from "./tmp-dir.ts";

const SMALL = { segmentBytes: 1024 };

function reopen(dir: string, opts = SMALL) {
  const { wal, state } = Wal.open(dir, opts);
  wal.close();
  return state;
}

test("a fresh WAL is empty", (t) => {
  const dir = tempDir(t);
  const { wal, state } = Wal.open(dir, SMALL);
  wal.close();
  assert.deepEqual(state, { hardState: { term: 0, vote: "", commit: 0 }, entries: [], firstIndex: 1, lastIndex: 0 });
  assert.deepEqual(segmentFiles(dir), ["wal-0000000000000000-0000000000000001.log"]);
  assert.equal(statSync(join(dir, segmentFiles(dir)[0])).size, 1024, "segment is preallocated");
});

test("entries and hard state round-trip", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  const batch = [entry(1, 1, ""), entry(2, 1, "set x=1"), entry(3, 2, "\u0000\u00ff binary", "conf")];
  wal.save({ term: 2, vote: "node-ü", commit: 1 }, batch);
  wal.save({ term: 2, vote: "node-ü", commit: 3 });
  wal.sync();
  wal.close();
  const state = reopen(dir);
  assert.deepEqual(state.hardState, { term: 2, vote: "node-ü", commit: 3 });
  assert.deepEqual(state.entries, batch);
  assert.equal(state.firstIndex, 1);
  assert.equal(state.lastIndex, 3);
  assert.equal(state.repaired, undefined);
});

test("appending after reopen continues the log", (t) => {
  const dir = tempDir(t);
  let { wal } = Wal.open(dir, SMALL);
  wal.save(undefined, entries(1, 3, 1));
  wal.sync();
  wal.close();
  ({ wal } = Wal.open(dir, SMALL));
  assert.equal(wal.lastIndex, 3);
  wal.save({ term: 1, vote: "a", commit: 4 }, entries(4, 5, 1));
  wal.sync();
  wal.close();
  const state = reopen(dir);
  assert.deepEqual(state.entries, entries(1, 5, 1));
  assert.equal(state.hardState.commit, 4);
});

test("overwriting a conflicting suffix survives reopen", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  wal.save(undefined, entries(1, 10, 1));
  wal.save({ term: 2, vote: "b", commit: 5 }, entries(6, 8, 2));
  assert.equal(wal.lastIndex, 8);
  wal.save(undefined, entries(9, 9, 2));
  wal.sync();
  wal.close();
  const state = reopen(dir);
  assert.deepEqual(state.entries, [...entries(1, 5, 1), ...entries(6, 9, 2)]);
  assert.equal(state.lastIndex, 9);
});

test("a truncation reaching back into an older segment is replayed", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  for (let i = 1; i <= 30; i++) wal.save(undefined, entries(i, i, 1, 64));
  assert.ok(segmentFiles(dir).length >= 3);
  wal.save(undefined, entries(3, 4, 5));
  wal.sync();
  wal.close();
  const state = reopen(dir);
  assert.deepEqual(state.entries, [...entries(1, 2, 1, 64), ...entries(3, 4, 5)]);
});

test("save refuses a gap or non-contiguous entries and stays usable", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  wal.save(undefined, entries(1, 2, 1));
  assert.throws(() => wal.save(undefined, [entry(4, 1)]), RangeError);
  assert.throws(() => wal.save(undefined, [entry(3, 1), entry(5, 1)]), RangeError);
  wal.save(undefined, [entry(3, 1)]);
  wal.sync();
  wal.close();
  assert.deepEqual(reopen(dir).entries, entries(1, 3, 1));
});

test("installing a snapshot restarts the log after its index", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  wal.save(undefined, entries(1, 5, 1));
  wal.save({ term: 3, vote: "", commit: 100 }, [], { index: 100 });
  assert.equal(wal.lastIndex, 100);
  wal.sync();
  let state = reopen(dir);
  assert.deepEqual(state.entries, []);
  assert.equal(state.firstIndex, 101);
  assert.equal(state.lastIndex, 100);

  assert.throws(() => wal.save(undefined, [entry(5, 3)], { index: 100 }), RangeError);
  wal.save(undefined, entries(201, 202, 3), { index: 200 });
  wal.sync();
  wal.close();
  state = reopen(dir);
  assert.deepEqual(state.entries, entries(201, 202, 3));
  assert.equal(state.firstIndex, 201);
});

test("segments roll over at the configured size and each starts with the hard state", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  wal.save({ term: 1, vote: "n1", commit: 0 }, []);
  for (let i = 1; i <= 40; i++) wal.save(undefined, entries(i, i, 1, 100));
  wal.sync();
  wal.close();
  const files = segmentFiles(dir);
  assert.ok(files.length >= 4, `expected several segments, got ${files.length}`);
  for (const [i, name] of files.entries()) {
    assert.match(name, new RegExp(`^wal-${String(i).padStart(16, "0")}-\\d{16}\\.log$`));
    const size = statSync(join(dir, name)).size;
    assert.ok(size <= 1024, `${name} is ${size} bytes`);
  }
  const state = reopen(dir);
  assert.deepEqual(state.entries, entries(1, 40, 1, 100));
  assert.deepEqual(state.hardState, { term: 1, vote: "n1", commit: 0 });
});

test("a batch larger than a segment goes into one segment without looping", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  wal.save(undefined, entries(1, 30, 1, 100));
  wal.save(undefined, entries(31, 31, 1));
  wal.sync();
  wal.close();
  assert.equal(segmentFiles(dir).length, 2);
  assert.equal(reopen(dir).entries.length, 31);
});

test("compaction deletes whole segments below the index and never the current one", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  wal.save({ term: 4, vote: "n2", commit: 40 }, []);
  for (let i = 1; i <= 40; i++) wal.save(undefined, entries(i, i, 4, 100));
  wal.sync();
  const before = segmentFiles(dir);
  const secondFirst = Number(before[1].slice(21, 37));

  assert.equal(wal.compact(secondFirst - 2), 0, "segment 0 still holds an entry above the index");
  assert.equal(wal.compact(secondFirst - 1), 1);
  assert.deepEqual(segmentFiles(dir), before.slice(1));

  let state = reopen(dir);
  assert.equal(state.firstIndex, secondFirst);
  assert.deepEqual(state.entries, entries(secondFirst, 40, 4, 100));
  assert.deepEqual(state.hardState, { term: 4, vote: "n2", commit: 40 }, "hard state comes from the segment header");

  assert.equal(wal.compact(1_000_000), before.length - 2);
  assert.equal(segmentFiles(dir).length, 1);
  wal.save(undefined, entries(41, 41, 4));
  wal.sync();
  wal.close();
  state = reopen(dir);
  assert.equal(state.lastIndex, 41);
  assert.equal(state.entries.at(-1)?.index, 41);
});

test("a corrupt record in an older segment is a hard error", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  for (let i = 1; i <= 30; i++) wal.save(undefined, entries(i, i, 1, 100));
  wal.sync();
  wal.close();
  const first = join(dir, segmentFiles(dir)[0]);
  const [, second] = recordBounds(first);
  const bytes = readFileSync(first);
  bytes[second.start + 20] ^= 0x10;
  writeFileSync(first, bytes);
  assert.throws(
    () => Wal.open(dir, SMALL),
    (err: unknown) =>
      err instanceof StorageCorruptionError &&
      err.file === first &&
      err.offset === second.start &&
      /checksum mismatch \(not the last segment\)/.test(err.message),
  );
});

test("a missing segment in the middle is a hard error", (t) => {
  const dir = tempDir(t);
  const { wal } = Wal.open(dir, SMALL);
  for (let i = 1; i <= 30; i++) wal.save(undefined, entries(i, i, 1, 100));
  wal.sync();
  wal.close();
  unlinkSync(join(dir, segmentFiles(dir)[1]));
  assert.throws(() => Wal.open(dir, SMALL), /segment 1 is missing/);
});

test("leftover temp segments are ignored and removed", (t) => {
  const dir = tempDir(t);
  reopen(dir);
  const temp = join(dir, "wal-0000000000000001-0000000000000001.log.tmp");
  writeFileSync(temp, "half-created");
  const state = reopen(dir);
  assert.equal(state.lastIndex, 0);
  assert.deepEqual(segmentFiles(dir), ["wal-0000000000000000-0000000000000001.log"]);
  assert.throws(() => statSync(temp));
});

test("unpreallocated segments grow with appends", (t) => {
  const dir = tempDir(t);
  const opts = { segmentBytes: 1024, preallocate: false };
  const { wal } = Wal.open(dir, opts);
  wal.save(undefined, entries(1, 3, 1));
  wal.sync();
  wal.close();
  const [name] = segmentFiles(dir);
  assert.equal(statSync(join(dir, name)).size, recordBounds(join(dir, name)).at(-1)?.end);
  assert.deepEqual(reopen(dir, opts).entries, entries(1, 3, 1));
});
