import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { join } from "node:path";
import { encodeCommand } from "../../src/db/command.ts";
import type { Param } from "../../src/db/param.ts";
import type { ApplyResult } from "../../src/db/result.ts";
import { type AppliedEvent, SqliteStateMachine } from "../../src/db/state-machine.ts";
import { applyNext, batch, freshMachine, machineWithSchema, tempDir } from "./helpers.ts";

const insertMember = (id: number, name: string) => ({
  sql: "INSERT INTO members (id, name, address) VALUES (?, ?, ?)",
  params: [id, name, `10.0.0.${id}:8443`],
});

function memberNames(sm: ReturnType<typeof freshMachine>): Param[] {
  return sm.query("SELECT name FROM members ORDER BY id").rows.map((r) => r[0]);
}

function assertError(r: ApplyResult, code: string, pattern: RegExp) {
  assert.equal(r.ok, false, JSON.stringify(r));
  if (r.ok) return;
  assert.equal(r.error.code, code);
  assert.match(r.error.message, pattern);
}

test("a fresh state machine is at index 0, term 0, schema 0; no-ops and conf entries advance it", () => {
  const sm = freshMachine();
  assert.deepEqual([sm.appliedIndex(), sm.appliedTerm(), sm.schemaVersion()], [0, 0, 0]);
  assert.deepEqual(sm.apply(1, 2, new Uint8Array()), { ok: true, results: [] });
  sm.applyConf(2, 3);
  assert.deepEqual([sm.appliedIndex(), sm.appliedTerm()], [2, 3]);
  assert.throws(() => sm.apply(2, 3, new Uint8Array()), /entry 2 out of order/);
  assert.throws(() => sm.apply(4, 3, new Uint8Array()), /entry 4 out of order/);
});

test("a batch applies all its statements and reports changes and rowids", () => {
  const sm = machineWithSchema();
  const r = applyNext(sm, batch([insertMember(1, "a"), insertMember(2, "b"), "UPDATE members SET address = 'x'"]));
  assert.deepEqual(r, {
    ok: true,
    results: [
      { changes: 1, lastInsertRowid: 1 },
      { changes: 1, lastInsertRowid: 2 },
      { changes: 2, lastInsertRowid: 2 },
    ],
  });
  assert.deepEqual(memberNames(sm), ["a", "b"]);
});

test("last_insert_rowid() and changes() see only the current command", () => {
  const sm = machineWithSchema();
  applyNext(sm, batch([insertMember(7, "a")]));
  const r = applyNext(sm, batch(["INSERT INTO config VALUES ('rowid', last_insert_rowid())", "INSERT INTO config VALUES ('changes', changes())"]));
  assert.equal(r.ok, true);
  assert.deepEqual(sm.query("SELECT key, value FROM config ORDER BY key").rows, [["changes", 1], ["rowid", 0]]);
});

test("a SQL error rolls the whole batch back and reports SQLite's message", () => {
  const sm = machineWithSchema();
  const before = sm.appliedIndex();
  const r = applyNext(sm, batch([insertMember(1, "a"), insertMember(2, "a")]));
  assertError(r, "sql-error", /^statement 1 failed: UNIQUE constraint failed: members\.name$/);
  assert.deepEqual(memberNames(sm), []);
  assert.equal(sm.appliedIndex(), before + 1, "a failed command still advances the applied index");
  assertError(applyNext(sm, batch(["INSERT INTO nope VALUES (1)"])), "sql-error", /statement 0 failed: no such table: nope/);
});

test("expectChanges mismatch rolls back", () => {
  const sm = machineWithSchema();
  applyNext(sm, batch([insertMember(1, "a")]));
  const r = applyNext(sm, batch([insertMember(2, "b"), { sql: "UPDATE members SET name = 'z' WHERE id = 99", params: [], expectChanges: 1 }]));
  assertError(r, "precondition-failed", /^statement 1 failed: expected 1 change, got 0$/);
  assert.deepEqual(memberNames(sm), ["a"]);
  const ok = applyNext(sm, batch([{ sql: "DELETE FROM members", params: [], expectChanges: 1 }]));
  assert.equal(ok.ok, true);
});

test("preconditions: expectRows, expectValue and the default (a row exists) pass and fail", () => {
  const sm = machineWithSchema();
  applyNext(sm, batch([insertMember(1, "a")]));
  const count = { sql: "SELECT id FROM members WHERE name = ?", params: ["a"] };
  const passing = [
    { ...count, expectRows: 1 },
    { sql: "SELECT id FROM members WHERE name = 'zz'", params: [], expectRows: 0 },
    { sql: "SELECT address FROM members WHERE id = :id", params: { id: 1 }, expectValue: "10.0.0.1:8443" },
    { sql: "SELECT count(*) FROM members", params: [], expectValue: 1 },
    { sql: "SELECT NULL", params: [], expectValue: null },
    count,
  ];
  assert.equal(applyNext(sm, batch([insertMember(2, "b")], passing)).ok, true);

  const failing: [object, RegExp][] = [
    [{ ...count, expectRows: 0 }, /^precondition 0 failed: expected 0 rows, got 1$/],
    [{ sql: "SELECT id FROM members WHERE name = 'zz'", params: [], expectRows: 1 }, /expected 1 row, got 0/],
    [{ sql: "SELECT name FROM members WHERE id = 1", params: [], expectValue: "b" }, /expected value "b", got "a"/],
    [{ sql: "SELECT name FROM members WHERE id = 9", params: [], expectValue: "a" }, /expected value "a", got no row/],
    [{ sql: "SELECT count(*) FROM members", params: [], expectValue: 3n }, /expected value 3, got 2/],
    [{ sql: "SELECT 1 WHERE 0", params: [], message: "member must exist" }, /^precondition 0 failed \(member must exist\): expected at least one row, got 0$/],
  ];
  for (const [p, pattern] of failing) {
    const hash = sm.contentHash();
    const index = sm.appliedIndex();
    assertError(applyNext(sm, batch([insertMember(3, "c")], [p as never])), "precondition-failed", pattern);
    assert.equal(sm.contentHash(), hash, "a failed precondition changes nothing");
    assert.equal(sm.appliedIndex(), index + 1, "but the applied index");
  }
  assert.deepEqual(memberNames(sm), ["a", "b"]);
});

test("later preconditions are named by their position; a precondition that writes is refused", () => {
  const sm = machineWithSchema();
  const r = applyNext(sm, batch([insertMember(1, "a")], [{ sql: "SELECT 1", params: [] }, { sql: "SELECT 1 WHERE 0", params: [] }]));
  assertError(r, "precondition-failed", /^precondition 1 failed/);
  // Forced past validation: the apply-time check refuses it the same way.
  const forced = batch(["SELECT 1"], [{ sql: "DELETE FROM members RETURNING id", params: [] }]);
  assertError(applyNext(sm, forced), "bad-command", /precondition 0: must be a read-only SELECT/);
});

test("a retried requestId returns the recorded result without writing twice", () => {
  const sm = machineWithSchema();
  const cmd = batch([insertMember(1, "a"), "UPDATE config SET value = value"], [], "client-42");
  const first = applyNext(sm, cmd);
  assert.equal(first.ok, true);
  const events: AppliedEvent[] = [];
  sm.onApplied((e) => events.push(e));
  const second = applyNext(sm, cmd);
  assert.deepEqual(second, first);
  assert.deepEqual(memberNames(sm), ["a"]);
  assert.equal(events[0].duplicate, true);
  assert.deepEqual(events[0].tables, []);
  assert.deepEqual(sm.lookupRequest("client-42"), { appliedIndex: sm.appliedIndex() - 1, result: first });
  assert.equal(sm.lookupRequest("never-sent"), undefined);
  // A query with the very text lookupRequest uses shares its cached statement harmlessly.
  sm.query("SELECT applied_index, result_json FROM _shoal_requests WHERE request_id = ?", ["client-42"]);
  assert.equal(sm.lookupRequest("client-42")?.result.ok, true);

  // Failures are recorded too: the retry learns the same outcome.
  const dup = batch([insertMember(2, "a")], [], "client-43");
  const failed = applyNext(sm, dup);
  assert.equal(failed.ok, false);
  applyNext(sm, batch(["DELETE FROM members"]));
  assert.deepEqual(applyNext(sm, dup), failed);
  assert.deepEqual(memberNames(sm), []);
});

test("request records are pruned deterministically by index", (t) => {
  const sm = new SqliteStateMachine(join(tempDir(), "s.db"), { requestRetention: 3 });
  t.after(() => sm.close());
  applyNext(sm, batch(["CREATE TABLE t (a)"], [], "old"));
  for (let i = 0; i < 3; i++) applyNext(sm, new Uint8Array());
  assert.notEqual(sm.lookupRequest("old"), undefined);
  applyNext(sm, new Uint8Array());
  assert.equal(sm.lookupRequest("old"), undefined);
});

test("undecodable entries fail as bad-command and still advance", () => {
  const sm = freshMachine();
  assertError(sm.apply(1, 1, new Uint8Array([1, 0x7b])), "bad-command", /undecodable command/);
  assertError(sm.apply(2, 1, new Uint8Array([7])), "bad-command", /unknown command format 7/);
  assert.equal(sm.appliedIndex(), 2);
});

test("param types round-trip through a batch and a query", () => {
  const sm = freshMachine();
  const values: Param[] = [null, 42, -7, 1.25, -0, 2n ** 60n + 3n, -(2n ** 63n), "héllo ☃", new Uint8Array([0, 1, 255]), new Uint8Array()];
  applyNext(sm, batch(["CREATE TABLE v (i INTEGER PRIMARY KEY, x ANY) STRICT"]));
  const r = applyNext(sm, batch(values.map((v, i) => ({ sql: "INSERT INTO v VALUES (?, ?)", params: [i, v] }))));
  assert.equal(r.ok, true);
  const rows = sm.query("SELECT x, typeof(x) FROM v ORDER BY i").rows;
  assert.deepEqual(rows.map((row) => row[0]), values);
  assert.ok(Object.is(rows[4][0], -0));
  assert.deepEqual(rows.map((row) => row[1]), ["null", "real", "real", "real", "real", "integer", "integer", "text", "blob", "blob"]);
  // Named parameters.
  const q = sm.query("SELECT x FROM v WHERE i = @i OR x = $x ORDER BY i", { i: 5, x: "héllo ☃" });
  assert.deepEqual(q, { columns: ["x"], rows: [[2n ** 60n + 3n], ["héllo ☃"]] });
});

test("query refuses anything that could write", () => {
  const sm = machineWithSchema();
  assert.throws(() => sm.query("DELETE FROM members"), /query is read-only: DELETE statement is not allowed/);
  assert.throws(() => sm.query("WITH x AS (SELECT 1) DELETE FROM members"), /query is read-only: the statement writes/);
  assert.throws(() => sm.query("BEGIN"), /read-only/);
  assert.throws(() => sm.query("PRAGMA journal_mode = DELETE"), /read-only/);
  assert.throws(() => sm.query("ATTACH 'x' AS y"), /read-only/);
  // Internal tables are readable, for debugging.
  assert.deepEqual(sm.query("SELECT applied_index, schema_version FROM _shoal_raft").rows, [[1, 1]]);
});

test("watch listeners see the tables a command wrote, and can unsubscribe", () => {
  const sm = machineWithSchema();
  const events: AppliedEvent[] = [];
  const off = sm.onApplied((e) => events.push(e));
  applyNext(sm, batch([insertMember(1, "a"), "INSERT OR REPLACE INTO config VALUES ('k', 1)", "UPDATE members SET name = 'b'"], [], "w1"));
  applyNext(sm, batch([insertMember(1, "again")], [], "w2")); // fails: nothing changed
  sm.apply(sm.appliedIndex() + 1, 4, new Uint8Array());
  assert.deepEqual(
    events.map((e) => [e.kind, e.index, e.requestId, e.tables.sort(), e.result.ok]),
    [
      ["command", 2, "w1", ["config", "members"], true],
      ["command", 3, "w2", [], false],
      ["noop", 4, null, [], true],
    ],
  );
  off();
  applyNext(sm, batch(["DELETE FROM members"]));
  assert.equal(events.length, 3);
});

test("a throwing listener does not break apply; it becomes a process warning", async () => {
  const sm = freshMachine();
  sm.onApplied(() => {
    throw new Error("boom");
  });
  const warning = once(process, "warning");
  assert.equal(applyNext(sm, batch(["CREATE TABLE t (a)"])).ok, true);
  assert.equal(sm.appliedIndex(), 1);
  const [w] = (await warning) as [Error];
  assert.match(w.message, /onApplied listener threw: boom/);
});

test("encoded entries are what apply consumes", () => {
  const sm = freshMachine();
  const data = encodeCommand(batch(["CREATE TABLE t (a)"]));
  assert.equal(sm.apply(1, 1, data).ok, true);
});
