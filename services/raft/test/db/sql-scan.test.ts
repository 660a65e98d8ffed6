import { test } from "node:test";
import assert from "node:assert/strict";
import { hasSecondStatement, leadingKeyword, tokenize, writtenTables } from "../../src/db/sql-scan.ts";

const tables = (sql: string) => writtenTables(tokenize(sql)).sort();

test("tokenizer sees through comments, strings and quoted identifiers", () => {
  const tokens = tokenize(`-- a comment\nSELECT 'it''s', "we""ird", [br], \`bt\`, x'0a', 1.5e3, :p /* c */ ;`);
  assert.deepEqual(
    tokens.map((t) => [t.kind, t.value]),
    [
      ["word", "SELECT"], ["string", "it's"], ["punct", ","], ["ident", 'we"ird'], ["punct", ","], ["ident", "br"],
      ["punct", ","], ["ident", "bt"], ["punct", ","], ["blob", "0a"], ["punct", ","], ["number", "1.5e3"],
      ["punct", ","], ["param", ":p"], ["punct", ";"],
    ],
  );
  assert.equal(leadingKeyword(tokenize("  /* x */ with a as (select 1) select * from a")), "WITH");
  assert.equal(hasSecondStatement(tokenize("SELECT 1; ;")), false);
  assert.equal(hasSecondStatement(tokenize("SELECT 1; SELECT 2")), true);
  const trigger = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE u SET b = CASE WHEN 1 THEN 2 END; DELETE FROM v; END;";
  assert.equal(hasSecondStatement(tokenize(trigger)), false);
  assert.equal(hasSecondStatement(tokenize(trigger + " DELETE FROM t")), true);
});

test("written tables come from INSERT, REPLACE, UPDATE, DELETE and table DDL", () => {
  assert.deepEqual(tables("INSERT INTO Members (a) VALUES (1)"), ["members"]);
  assert.deepEqual(tables("INSERT OR REPLACE INTO main.\"Config\" VALUES (1)"), ["config"]);
  assert.deepEqual(tables("REPLACE INTO [certs] VALUES (1)"), ["certs"]);
  assert.deepEqual(tables("UPDATE OR IGNORE members SET a = 1"), ["members"]);
  assert.deepEqual(tables("DELETE FROM ops WHERE id IN (SELECT id FROM other)"), ["ops"]);
  assert.deepEqual(tables("WITH x AS (SELECT 1) INSERT INTO a SELECT * FROM x"), ["a"]);
  assert.deepEqual(tables("INSERT INTO a VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v"), ["a"]);
  assert.deepEqual(tables("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, p REFERENCES q ON UPDATE CASCADE ON DELETE SET NULL)"), ["t"]);
  assert.deepEqual(tables("DROP TABLE IF EXISTS old"), ["old"]);
  assert.deepEqual(tables("ALTER TABLE t ADD COLUMN c"), ["t"]);
  assert.deepEqual(tables("SELECT * FROM t WHERE note = 'DELETE FROM x'"), []);
  assert.deepEqual(tables("CREATE TRIGGER tr AFTER UPDATE OF a ON t BEGIN UPDATE u SET b = 1; END"), ["u"]);
});
