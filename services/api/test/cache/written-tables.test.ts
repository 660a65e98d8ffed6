// Which cached reads a gateway's own write drops (cache/written-tables.ts): the tables
// its statements write, as the Watch stream would report them, or everything when a
// statement's tables cannot be told.
import assert from "node:assert/strict";
import { test } from "node:test";
import { tablesWrittenBy } from "../../src/cache/written-tables.ts";

test("the tables a batch writes: inserts, updates, deletes, upserts, once each", () => {
  assert.deepEqual(
    tablesWrittenBy([
      { sql: "INSERT INTO instances (project, name) VALUES (?, ?)" },
      { sql: "INSERT INTO events (seq, type, project, body) VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM events), ?, ?, ?)" },
      { sql: "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?" },
      { sql: "UPDATE operations SET status = ? WHERE id = ?" },
      { sql: "INSERT OR REPLACE INTO config (key, value) VALUES (?, ?)" },
    ])?.sort(),
    ["config", "events", "instances", "operations"],
  );
});

test("a read in a subquery is not a write: members stay cached when an instance is placed", () => {
  assert.deepEqual(tablesWrittenBy([{ sql: "UPDATE instances SET node_id = (SELECT node_id FROM members WHERE name = ?) WHERE name = ?" }]), ["instances"]);
});

test("a statement whose tables cannot be told drops everything (undefined)", () => {
  assert.equal(tablesWrittenBy([{ sql: "INSERT INTO instances (name) VALUES (?)" }, { sql: "SELECT 1" }]), undefined);
  assert.equal(tablesWrittenBy([{ sql: "WITH x AS (SELECT 1) SELECT * FROM x" }]), undefined);
});
