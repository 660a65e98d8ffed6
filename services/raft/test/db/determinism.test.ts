import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import Database from "better-sqlite3";
import { type Command, encodeCommand } from "../../src/db/command.ts";
import { SqliteStateMachine } from "../../src/db/state-machine.ts";
import { applyNext, batch, exampleMigrations, freshMachine, tempDir } from "./helpers.ts";
import { pendingMigrations } from "../../src/db/migrations.ts";

/** The same entries, applied to two replicas, with their results. */
function feedBoth(a: SqliteStateMachine, b: SqliteStateMachine, entries: (Command | Uint8Array)[]) {
  return entries.map((e) => {
    const ra = applyNext(a, e, 3);
    const rb = applyNext(b, e, 3);
    assert.deepEqual(ra, rb);
    return ra;
  });
}

test("two replicas fed the same entries end with equal content hashes", () => {
  const dir = tempDir();
  const a = freshMachine(dir, "a.db");
  const b = freshMachine(dir, "b.db");
  const results = feedBoth(a, b, [
    ...pendingMigrations(exampleMigrations, 0),
    new Uint8Array(),
    batch([{ sql: "INSERT INTO members (name, address) VALUES (?, ?)", params: ["m1", "a:1"] }]),
    batch([{ sql: "INSERT INTO members (name, address) VALUES (?, ?)", params: ["m1", "a:2"] }]), // fails
    batch([{ sql: "INSERT INTO config VALUES (?, ?)", params: ["blob", new Uint8Array([1, 2, 3])] }]),
    batch(["UPDATE members SET role = 'standby'"], [], "same-id"),
    batch(["UPDATE members SET role = 'spare'"], [], "same-id"), // duplicate id: not executed
  ]);
  assert.deepEqual(results.map((r) => r.ok), [true, true, true, true, false, true, true, true]);
  assert.equal(a.contentHash(), b.contentHash());
  assert.equal(a.contentHash({ includeInternal: true }), b.contentHash({ includeInternal: true }));
  assert.equal(a.query("SELECT role FROM members").rows[0][0], "standby");

  // And the hash does notice a difference.
  applyNext(a, batch(["UPDATE config SET value = x'010204'"]));
  applyNext(b, batch(["UPDATE config SET value = x'010203'"]));
  assert.notEqual(a.contentHash(), b.contentHash());
});

test("the hash covers the schema and tells value types apart", () => {
  const dir = tempDir();
  const a = freshMachine(dir, "a.db");
  const b = freshMachine(dir, "b.db");
  applyNext(a, batch(["CREATE TABLE t (x)", { sql: "INSERT INTO t VALUES (?)", params: [1n] }]));
  applyNext(b, batch(["CREATE TABLE t (x)", { sql: "INSERT INTO t VALUES (?)", params: [1] }]));
  assert.notEqual(a.contentHash(), b.contentHash(), "INTEGER 1 and REAL 1.0 differ");
  const c = freshMachine(dir, "c.db");
  applyNext(c, batch(["CREATE TABLE t (x, y)"]));
  assert.notEqual(freshMachine(dir, "d.db").contentHash(), c.contentHash());
});

test("clock input reaching apply through a parameter fails identically on two replicas", () => {
  const dir = tempDir();
  const a = freshMachine(dir, "a.db");
  const b = freshMachine(dir, "b.db");
  const [, r] = feedBoth(a, b, [
    batch(["CREATE TABLE t (x)"]),
    batch([{ sql: "INSERT INTO t VALUES (datetime(?))", params: ["now"] }]),
  ]);
  assert.deepEqual(r, {
    ok: false,
    error: { code: "bad-command", message: "statement 0 failed: datetime() with 'now' depends on the host's clock or time zone" },
  });
  assert.deepEqual(a.query("SELECT count(*) FROM t").rows, [[0]]);
  assert.equal(a.contentHash(), b.contentHash());
});

test("non-deterministic SQL already in the schema fails identically on two replicas", () => {
  // A view created before the checks existed (or by hand): apply must still not diverge.
  const dir = tempDir();
  const paths = [join(dir, "a.db"), join(dir, "b.db")];
  for (const path of paths) {
    new SqliteStateMachine(path).close();
    const raw = new Database(path);
    raw.exec(`
      CREATE TABLE t (x, y DEFAULT CURRENT_TIMESTAMP);
      CREATE VIEW noise AS SELECT random() AS r, randomblob(4) AS b;
      CREATE VIEW clock AS SELECT julianday('now') AS j;
    `);
    raw.close();
  }
  const [a, b] = paths.map((p) => new SqliteStateMachine(p));
  try {
    const results = feedBoth(a, b, [
      batch(["INSERT INTO t (x, y) SELECT r, 0 FROM noise"]),
      batch(["INSERT INTO t (x, y) SELECT b, 0 FROM noise"]),
      batch(["INSERT INTO t (x, y) SELECT j, 0 FROM clock"]),
      batch(["INSERT INTO t (x) VALUES (1)"]),
      batch(["INSERT INTO t (x, y) VALUES (1, 2)"]),
    ]);
    assert.deepEqual(
      results.map((r) => (r.ok ? "ok" : `${r.error.code}: ${r.error.message}`)),
      [
        "bad-command: statement 0 failed: random() is not allowed: replicas would diverge",
        "bad-command: statement 0 failed: randomblob() is not allowed: replicas would diverge",
        "bad-command: statement 0 failed: julianday() with 'now' depends on the host's clock or time zone",
        "bad-command: statement 0 failed: CURRENT_TIMESTAMP is not allowed: replicas would diverge",
        "ok",
      ],
    );
    assert.equal(a.contentHash(), b.contentHash());
  } finally {
    a.close();
    b.close();
  }
});

test("date and time functions still work on explicit times, types intact", () => {
  const sm = freshMachine();
  applyNext(sm, batch(["CREATE TABLE t (d TEXT)", "CREATE INDEX t_day ON t (date(d))"]));
  const r = applyNext(sm, batch([
    "INSERT INTO t VALUES (date('2024-01-31', '+1 month'))",
    { sql: "INSERT INTO t VALUES (strftime('%Y-%m-%d %H:%M', ?, 'unixepoch'))", params: [86400] },
  ]));
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.deepEqual(sm.query("SELECT d FROM t ORDER BY d").rows, [["1970-01-02 00:00"], ["2024-03-02"]]);
  assert.deepEqual(sm.query("SELECT unixepoch('2024-01-01'), typeof(unixepoch('2024-01-01')), julianday('2000-01-01')").rows, [
    [1704067200, "integer", 2451544.5],
  ]);
  assert.throws(() => sm.query("SELECT date()"), /date\(\) without a time reads the clock/);
  assert.throws(() => sm.query("SELECT random()"), /random\(\) is not allowed/);
});

test("entries bypassing validation are refused at apply time the same way", () => {
  const dir = tempDir();
  const a = freshMachine(dir, "a.db");
  const b = freshMachine(dir, "b.db");
  const forced = encodeCommand(batch(["INSERT INTO t VALUES (random())"]));
  const [r] = feedBoth(a, b, [forced]);
  assert.deepEqual(r, {
    ok: false,
    error: {
      code: "bad-command",
      message: "statement 0: random() is non-deterministic; compute the value before proposing and pass it as a parameter",
    },
  });
  const internal = encodeCommand(batch(["UPDATE _shoal_raft SET applied_index = 0"]));
  const [r2] = feedBoth(a, b, [internal]);
  assert.equal(!r2.ok && r2.error.code, "bad-command");
  assert.equal(a.appliedIndex(), 2);
});
