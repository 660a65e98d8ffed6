import { test } from "node:test";
import assert from "node:assert/strict";
import { checkMigrations, latestVersion, migrationRequestId, pendingMigrations } from "../../src/db/migrations.ts";
import { applyNext, exampleMigrations, freshMachine } from "./helpers.ts";

test("pendingMigrations lists what is left, in order, with deterministic request ids", () => {
  assert.deepEqual(pendingMigrations(exampleMigrations, 0).map((m) => [m.version, m.requestId]), [
    [1, migrationRequestId(1)],
    [2, migrationRequestId(2)],
  ]);
  assert.deepEqual(pendingMigrations(exampleMigrations, 1).map((m) => m.version), [2]);
  assert.deepEqual(pendingMigrations(exampleMigrations, 2), []);
  assert.deepEqual(pendingMigrations(exampleMigrations, 7), [], "a database newer than the code");
  assert.equal(latestVersion(exampleMigrations), 2);
  assert.deepEqual(pendingMigrations(exampleMigrations, 1)[0].statements, [{ sql: exampleMigrations[1].statements[0], params: [] }]);
});

test("checkMigrations refuses gaps, disorder and empty migrations", () => {
  assert.throws(() => checkMigrations([{ version: 2, statements: ["SELECT 1"] }]), /position 0 has version 2, expected 1/);
  assert.throws(
    () => checkMigrations([{ version: 1, statements: ["SELECT 1"] }, { version: 1, statements: ["SELECT 1"] }]),
    /position 1 has version 1, expected 2/,
  );
  assert.throws(() => checkMigrations([{ version: 1, statements: [] }]), /no statements/);
});

test("migrations apply in order and bump the schema version with the data", () => {
  const sm = freshMachine();
  for (const m of pendingMigrations(exampleMigrations, sm.schemaVersion())) {
    const r = applyNext(sm, m);
    assert.equal(r.ok, true, JSON.stringify(r));
  }
  assert.equal(sm.schemaVersion(), 2);
  assert.deepEqual(sm.query("SELECT schema_version FROM _shoal_raft").rows, [[2]]);
  assert.deepEqual(
    sm.query("SELECT name FROM pragma_table_info('members') ORDER BY cid").rows.map((r) => r[0]),
    ["id", "name", "address", "role"],
  );
  // Proposed twice (say, by two nodes): the second is a duplicate, not an error.
  assert.equal(applyNext(sm, pendingMigrations(exampleMigrations, 1)[0]).ok, true);
});

test("out-of-order migrations are refused and change nothing", () => {
  const sm = freshMachine();
  const [v1, v2] = pendingMigrations(exampleMigrations, 0);
  const hash = sm.contentHash();
  assert.deepEqual(applyNext(sm, v2), {
    ok: false,
    error: { code: "schema-version", message: "migration to version 2 needs schema version 1, the database is at 0" },
  });
  assert.equal(sm.contentHash(), hash);
  assert.equal(sm.schemaVersion(), 0);
  assert.equal(sm.appliedIndex(), 1);
  applyNext(sm, v1);
  const again = applyNext(sm, { ...v1, requestId: "someone-else" });
  assert.equal(!again.ok && again.error.code, "schema-version");
  assert.equal(sm.schemaVersion(), 1);
});

test("a failing migration rolls back entirely, version included", () => {
  const sm = freshMachine();
  const r = applyNext(sm, {
    kind: "migrate",
    requestId: "bad",
    version: 1,
    statements: [
      { sql: "CREATE TABLE a (x)", params: [] },
      { sql: "CREATE TABLE a (x)", params: [] },
    ],
  });
  assert.deepEqual(r, { ok: false, error: { code: "sql-error", message: "statement 1 failed: table a already exists" } });
  assert.equal(sm.schemaVersion(), 0);
  assert.deepEqual(sm.query("SELECT count(*) FROM sqlite_schema WHERE name = 'a'").rows, [[0]]);
});
