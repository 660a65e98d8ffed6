// Shared fixtures for the state machine tests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { type Batch, type Command, type Precondition, type Statement, encodeCommand } from "../../src/db/command.ts";
import type { Migration } from "../../src/db/migrations.ts";
import { SqliteStateMachine } from "../../src/db/state-machine.ts";

/** A fresh directory under the OS temp dir, removed when the test file ends. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "shoal-db-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A state machine on a fresh file, closed when the test file ends. */
export function freshMachine(dir = tempDir(), name = "state.db"): SqliteStateMachine {
  const sm = new SqliteStateMachine(join(dir, name));
  after(() => sm.close());
  return sm;
}

/** An example version-1 schema; the real Shoal schema lives elsewhere. */
export const exampleMigrations: Migration[] = [
  {
    version: 1,
    statements: [
      "CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, address TEXT NOT NULL)",
      "CREATE TABLE config (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    ],
  },
  { version: 2, statements: ["ALTER TABLE members ADD COLUMN role TEXT NOT NULL DEFAULT 'voter'"] },
];

let counter = 0;
export function batch(statements: (string | Statement)[], preconditions: Precondition[] = [], requestId?: string): Batch {
  return {
    kind: "batch",
    requestId: requestId ?? `req-${++counter}`,
    statements: statements.map((s) => (typeof s === "string" ? { sql: s, params: [] } : s)),
    preconditions,
  };
}

/** Applies a command at the next index, as the Raft driver would. */
export function applyNext(sm: SqliteStateMachine, cmd: Command | Uint8Array, term = 1) {
  const data = cmd instanceof Uint8Array ? cmd : encodeCommand(cmd);
  return sm.apply(sm.appliedIndex() + 1, term, data);
}

/** A state machine at schema version 1 of the example schema. */
export function machineWithSchema(dir?: string, name?: string): SqliteStateMachine {
  const sm = freshMachine(dir, name);
  const [v1] = exampleMigrations;
  const r = applyNext(sm, {
    kind: "migrate",
    requestId: "schema-v1",
    version: 1,
    statements: v1.statements.map((s) => ({ sql: s as string, params: [] })),
  });
  if (!r.ok) throw new Error(r.error.message);
  return sm;
}
