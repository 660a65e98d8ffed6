import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AppliedEvent } from "../../src/db/state-machine.ts";
import { applyNext, batch, freshMachine, machineWithSchema, tempDir } from "./helpers.ts";

test("snapshot then restore into a fresh state machine gives equal content and position", async () => {
  const dir = tempDir();
  const sm = machineWithSchema(dir, "a.db");
  for (let i = 1; i <= 20; i++) {
    applyNext(sm, batch([{ sql: "INSERT INTO config VALUES (?, ?)", params: [`k${i}`, new Uint8Array([i])] }], [], `r${i}`), 2);
  }
  const snap = join(dir, "snap.db");
  const pos = await sm.snapshotTo(snap);
  assert.deepEqual(pos, { index: sm.appliedIndex(), term: 2 });
  assert.equal(existsSync(`${snap}-wal`), false, "the snapshot is one self-contained file");

  const fresh = freshMachine(dir, "b.db");
  const events: AppliedEvent[] = [];
  fresh.onApplied((e) => events.push(e));
  assert.deepEqual(fresh.restoreFrom(snap), pos);
  assert.deepEqual([fresh.appliedIndex(), fresh.appliedTerm(), fresh.schemaVersion()], [pos.index, 2, 1]);
  assert.equal(fresh.contentHash(), sm.contentHash());
  assert.equal(fresh.contentHash({ includeInternal: true }), sm.contentHash({ includeInternal: true }));
  assert.deepEqual(events.map((e) => [e.kind, e.index]), [["restore", pos.index]]);
  // Request records travel with the snapshot, so retries stay idempotent after it.
  assert.equal(fresh.lookupRequest("r7")?.result.ok, true);

  // Both continue in step.
  for (const m of [sm, fresh]) applyNext(m, batch(["DELETE FROM config WHERE key LIKE 'k1%'"], [], "after"), 3);
  assert.equal(fresh.contentHash({ includeInternal: true }), sm.contentHash({ includeInternal: true }));
});

test("the snapshot's position matches its content even when applies run during the backup", async () => {
  const dir = tempDir();
  const sm = freshMachine(dir, "a.db");
  applyNext(sm, batch(["CREATE TABLE log (idx INTEGER PRIMARY KEY, pad BLOB)"]));
  // Enough pages that the online backup takes many steps.
  for (let i = 0; i < 40; i++) {
    applyNext(sm, batch([{ sql: "INSERT INTO log VALUES (?, zeroblob(100000))", params: [sm.appliedIndex() + 1] }]));
  }
  let applying = true;
  const writer = (async () => {
    while (applying) {
      applyNext(sm, batch([{ sql: "INSERT INTO log VALUES (?, zeroblob(1000))", params: [sm.appliedIndex() + 1] }]));
      await new Promise((r) => setImmediate(r));
    }
  })();
  const snap = join(dir, "snap.db");
  const started = sm.appliedIndex();
  const pos = await sm.snapshotTo(snap);
  applying = false;
  await writer;
  assert.ok(pos.index > started + 1, `applies interleaved with the backup (${started} -> ${pos.index})`);

  const fresh = freshMachine(dir, "b.db");
  fresh.restoreFrom(snap);
  assert.equal(fresh.appliedIndex(), pos.index);
  assert.deepEqual(fresh.query("SELECT max(idx), count(*) FROM log").rows, [[pos.index, pos.index - 1]]);
});

test("restore refuses a file that is not a state machine database and keeps the current one", () => {
  const dir = tempDir();
  const sm = machineWithSchema(dir, "a.db");
  const hash = sm.contentHash();
  const junk = join(dir, "junk.db");
  writeFileSync(junk, "not a database at all, not even close........................................................");
  assert.throws(() => sm.restoreFrom(junk), /not a database/);
  assert.throws(() => sm.restoreFrom(sm.path), /from itself/);
  assert.equal(sm.contentHash(), hash);
  assert.equal(applyNext(sm, batch(["DELETE FROM members"])).ok, true);
});

test("restore replaces newer local state wholesale", async () => {
  const dir = tempDir();
  const a = machineWithSchema(dir, "a.db");
  const snap = join(dir, "snap.db");
  await a.snapshotTo(snap);
  const hash = a.contentHash();
  applyNext(a, batch(["INSERT INTO config VALUES ('later', 1)"]));
  a.restoreFrom(snap);
  assert.equal(a.appliedIndex(), 1);
  assert.equal(a.contentHash(), hash);
  assert.deepEqual(a.query("SELECT count(*) FROM config").rows, [[0]]);
});
