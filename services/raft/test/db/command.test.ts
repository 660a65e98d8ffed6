import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type Batch,
  InvalidCommandError,
  MAX_COMMAND_BYTES,
  MAX_STATEMENTS,
  decodeCommand,
  encodeCommand,
  validateCommand,
} from "../../src/db/command.ts";
import { batch } from "./helpers.ts";

const tricky: Batch = {
  kind: "batch",
  requestId: "r1",
  statements: [
    {
      sql: "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      params: [null, 42, 1.5, 2n ** 60n + 1n, -(2n ** 63n), "héllo ☃", new Uint8Array([0, 255, 7]), -0],
      expectChanges: 1,
    },
    { sql: "UPDATE t SET a = @a", params: { a: "x", b: new Uint8Array() } },
  ],
  preconditions: [
    { sql: "SELECT 1", params: [], expectRows: 1, expectValue: null, message: "m" },
    { sql: "SELECT ?", params: [9007199254740993n], expectValue: 9007199254740993n },
  ],
};

test("encode/decode round-trips every param type exactly", () => {
  const back = decodeCommand(encodeCommand(tricky));
  assert.deepEqual(back, tricky);
  const p = (back as Batch).statements[0].params as unknown[];
  assert.ok(Object.is(p[7], -0));
  assert.equal(typeof p[3], "bigint");
  assert.ok(p[6] instanceof Uint8Array);
});

test("encode keeps absent optional fields absent and null expectValue present", () => {
  const back = decodeCommand(encodeCommand(tricky)) as Batch;
  assert.equal("expectChanges" in back.statements[1], false);
  assert.equal("expectValue" in back.preconditions[0], true);
  assert.equal(back.preconditions[0].expectValue, null);
});

test("migrate round-trips", () => {
  const m = { kind: "migrate" as const, requestId: "m", version: 3, statements: [{ sql: "CREATE TABLE x (a)", params: [] }] };
  assert.deepEqual(decodeCommand(encodeCommand(m)), m);
});

test("decode rejects garbage", () => {
  assert.throws(() => decodeCommand(new Uint8Array([9, 1, 2])), /unknown command format/);
  assert.throws(() => decodeCommand(new Uint8Array([1, 123])));
  const bad = new Uint8Array([1, ...Buffer.from(JSON.stringify({ t: "b", id: "x", s: [{ q: "x", p: [["z", "1"]] }], pc: [] }))]);
  assert.throws(() => decodeCommand(bad), /malformed command/);
});

test("validateCommand accepts a good command and returns its encoding", () => {
  const { command, data } = validateCommand(tricky);
  assert.deepEqual(decodeCommand(data), command);
});

function refused(cmd: unknown, pattern: RegExp) {
  assert.throws(() => validateCommand(cmd), (e: unknown) => {
    assert.ok(e instanceof InvalidCommandError, String(e));
    assert.match(e.message, pattern);
    return true;
  });
}

test("validateCommand refuses malformed input", () => {
  refused({ kind: "batch", requestId: "x" }, /malformed command/);
  refused({ ...batch(["SELECT 1"]), requestId: "" }, /malformed command/);
  refused(batch([{ sql: "INSERT INTO t VALUES (?)", params: [NaN] }]), /malformed command/);
  refused(batch([{ sql: "INSERT INTO t VALUES (?)", params: [2n ** 64n] }]), /64-bit/);
  refused({ kind: "migrate", requestId: "m", version: 0, statements: [] }, /malformed command/);
});

test("validateCommand refuses empty, oversized and overlong batches", () => {
  refused(batch([]), /empty batch/);
  refused(batch(Array.from({ length: MAX_STATEMENTS + 1 }, () => "DELETE FROM t")), /1001 statements/);
  refused(batch([{ sql: "INSERT INTO t VALUES (?)", params: ["x".repeat(MAX_COMMAND_BYTES)] }]), /bytes, the limit is/);
});

test("validateCommand refuses non-deterministic SQL", () => {
  const cases: [string, RegExp][] = [
    ["INSERT INTO t VALUES (random())", /statement 0: random\(\) is non-deterministic/],
    ["INSERT INTO t VALUES (RANDOMBLOB(16))", /randomblob\(\) is non-deterministic/],
    ["INSERT INTO t VALUES (\"random\"())", /random\(\)/],
    ["INSERT INTO t VALUES (total_changes())", /total_changes/],
    ["INSERT INTO t VALUES (datetime('now'))", /datetime\(\) with 'now'/],
    ["INSERT INTO t VALUES (strftime('%s', 'NOW'))", /strftime\(\) with 'NOW'/],
    ["INSERT INTO t VALUES (date(x, 'localtime'))", /date\(\) with 'localtime'/],
    ["INSERT INTO t VALUES (julianday())", /julianday\(\) without arguments/],
    ["INSERT INTO t VALUES (CURRENT_TIMESTAMP)", /CURRENT_TIMESTAMP reads the clock/],
    ["CREATE TABLE t (a, b DEFAULT current_date)", /CURRENT_DATE/],
    ["CREATE TEMP TABLE t (a)", /temporary/],
  ];
  for (const [sql, pattern] of cases) refused(batch([sql]), pattern);
});

test("validateCommand allows deterministic look-alikes", () => {
  for (const sql of [
    "INSERT INTO t VALUES ('random()', 'now', 'CURRENT_TIMESTAMP')",
    "INSERT INTO t VALUES (date('2024-01-01', '+1 day'), changes(), last_insert_rowid())",
    "UPDATE t SET \"current_time\" = 1 -- random()",
    "/* datetime('now') */ DELETE FROM t WHERE temp = 1",
  ]) {
    validateCommand(batch([sql]));
  }
});

test("validateCommand refuses internal tables, transaction control and multiple statements", () => {
  refused(batch(["DELETE FROM _shoal_raft"]), /statement 0: touches internal table _shoal_raft/);
  refused(batch(["UPDATE \"_SHOAL_requests\" SET x = 1"]), /internal table/);
  refused(batch(["SELECT 1"], [{ sql: "SELECT * FROM _shoal_requests", params: [] }]), /precondition 0: touches internal/);
  refused(batch(["COMMIT"]), /COMMIT is not allowed/);
  refused(batch(["PRAGMA foreign_keys = OFF"]), /PRAGMA is not allowed/);
  refused(batch(["ATTACH 'x.db' AS x"]), /ATTACH/);
  refused(batch(["DELETE FROM t; DROP TABLE t"]), /more than one statement/);
  refused(batch(["'unterminated"]), /unterminated/);
  validateCommand(batch(["DELETE FROM t;"]));
});

test("validateCommand refuses preconditions that are not SELECTs", () => {
  refused(batch(["SELECT 1"], [{ sql: "DELETE FROM t", params: [] }]), /precondition 0: must be a read-only SELECT, got DELETE/);
  validateCommand(batch(["SELECT 1"], [{ sql: "WITH x AS (SELECT 1) SELECT * FROM x", params: [] }]));
});
