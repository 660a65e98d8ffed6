// Crash recovery: whatever a crash or a bad disk leaves at the end of the last
// segment, the log reopens with its intact prefix and says what it cut.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Wal, type WalOptions } from "../../src/storage/wal.ts";
import { StorageCorruptionError } from "../../src/storage/corruption-error.ts";
import { writeEntry, entryRecordBytes } from "../../src/storage/wal-record.ts";
import { entries, entry, recordBounds, segmentFiles } from "./wal-helpers.ts";
import { tempDir } from "./tmp-dir.ts";

const MODES: [string, WalOptions][] = [
  ["preallocated", { segmentBytes: 4096 }],
  ["growing", { segmentBytes: 4096, preallocate: false }],
];

/** A WAL holding entries 1..5 (durable) and entry 6 as the last record, closed. */
function setUp(dir: string, opts: WalOptions): { path: string; last: { start: number; end: number } } {
  const { wal } = Wal.open(dir, opts);
  wal.save({ term: 1, vote: "n1", commit: 2 }, entries(1, 5, 1));
  wal.sync();
  wal.save(undefined, [entry(6, 1, "x".repeat(40))]);
  wal.sync();
  wal.close();
  const path = join(dir, segmentFiles(dir).at(-1)!);
  return { path, last: recordBounds(path).at(-1)! };
}

/** Opens, checks the expected log and repair, then proves the repaired WAL appends and reopens cleanly. */
function expectRepaired(dir: string, opts: WalOptions, lastIndex: number, repairOffset: number | undefined): void {
  const { wal, state } = Wal.open(dir, opts);
  assert.deepEqual(state.entries, [...entries(1, 5, 1), ...(lastIndex === 6 ? [entry(6, 1, "x".repeat(40))] : [])]);
  assert.deepEqual(state.hardState, { term: 1, vote: "n1", commit: 2 });
  if (repairOffset === undefined) {
    assert.equal(state.repaired, undefined);
  } else {
    assert.ok(state.repaired, "repair is reported");
    assert.equal(state.repaired.offset, repairOffset);
    assert.equal(state.repaired.segment, join(dir, segmentFiles(dir).at(-1)!));
    assert.ok(state.repaired.truncatedBytes > 0);
  }
  wal.save(undefined, [entry(lastIndex + 1, 2, "after repair")]);
  wal.sync();
  wal.close();
  const again = Wal.open(dir, opts);
  again.wal.close();
  assert.equal(again.state.repaired, undefined, "the repair left a clean tail");
  assert.equal(again.state.lastIndex, lastIndex + 1);
  assert.deepEqual(again.state.entries.at(-1), entry(lastIndex + 1, 2, "after repair"));
}

for (const [mode, opts] of MODES) {
  test(`${mode}: a clean tail needs no repair`, (t) => {
    const dir = tempDir(t);
    setUp(dir, opts);
    expectRepaired(dir, opts, 6, undefined);
  });

  test(`${mode}: a last record cut short at any offset is truncated away`, (t) => {
    const dir = tempDir(t);
    const { last } = setUp(dir, opts);
    const snapshot = new Map(segmentFiles(dir).map((n) => [n, readFileSync(join(dir, n))]));
    for (const cut of [last.start + 1, last.start + 4, last.start + 8, last.start + 20, last.end - 1]) {
      for (const [n, bytes] of snapshot) writeFileSync(join(dir, n), bytes);
      truncateSync(join(dir, segmentFiles(dir).at(-1)!), cut);
      expectRepaired(dir, opts, 5, last.start);
    }
  });

  test(`${mode}: garbage after the last record is truncated away`, (t) => {
    const dir = tempDir(t);
    const { path, last } = setUp(dir, opts);
    const bytes = readFileSync(path);
    const garbage = Buffer.from("garbage!".repeat(4));
    // Overwrites zero fill when preallocated, extends the file otherwise.
    writeFileSync(path, Buffer.concat([bytes.subarray(0, last.end), garbage, bytes.subarray(last.end + garbage.length)]));
    expectRepaired(dir, opts, 6, last.end);
  });

  test(`${mode}: flipped bits in the last record are detected`, (t) => {
    const dir = tempDir(t);
    const { path, last } = setUp(dir, opts);
    const original = readFileSync(path);
    // Length field, checksum field, entry index, entry data.
    for (const at of [last.start, last.start + 5, last.start + 9, last.end - 3]) {
      const bytes = Buffer.from(original);
      bytes[at] ^= 0x04;
      writeFileSync(path, bytes);
      expectRepaired(dir, opts, 5, last.start);
    }
  });
}

test("preallocated: a torn write that left zeros mid-record is truncated away", (t) => {
  const opts = MODES[0][1];
  const dir = tempDir(t);
  const { path, last } = setUp(dir, opts);
  const bytes = readFileSync(path);
  bytes.fill(0, last.start + 12, last.end); // the header made it to disk, the rest did not
  writeFileSync(path, bytes);
  expectRepaired(dir, opts, 5, last.start);
});

test("preallocated: garbage beyond the zero fill is truncated away", (t) => {
  const opts = MODES[0][1];
  const dir = tempDir(t);
  const { path, last } = setUp(dir, opts);
  appendFileSync(path, Buffer.from([1, 2, 3]));
  expectRepaired(dir, opts, 6, last.end);
});

test("a checksummed record that breaks the log's order is an error even in the last segment", (t) => {
  const dir = tempDir(t);
  const opts = MODES[1][1];
  const { path } = setUp(dir, opts);
  const gap = entry(9, 1);
  const record = Buffer.alloc(entryRecordBytes(gap));
  writeEntry(record, 0, gap);
  appendFileSync(path, record);
  assert.throws(
    () => Wal.open(dir, opts),
    (err: unknown) => err instanceof StorageCorruptionError && /does not follow/.test(err.message),
  );
});

test("only the last segment is repaired; a torn tail there keeps older segments intact", (t) => {
  const dir = tempDir(t);
  const opts = { segmentBytes: 512 };
  const { wal } = Wal.open(dir, opts);
  for (let i = 1; i <= 20; i++) wal.save(undefined, entries(i, i, 1, 50));
  wal.sync();
  wal.close();
  assert.ok(segmentFiles(dir).length > 2);
  const path = join(dir, segmentFiles(dir).at(-1)!);
  const last = recordBounds(path).at(-1)!;
  truncateSync(path, last.end - 2);
  const { wal: reopened, state } = Wal.open(dir, opts);
  reopened.close();
  assert.equal(state.repaired?.offset, last.start);
  assert.deepEqual(state.entries, entries(1, 19, 1, 50));
});
