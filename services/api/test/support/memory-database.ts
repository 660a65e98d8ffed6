// A `Database` (src/schema.ts) for unit tests, without Raft or gRPC: the replicated
// database's own state machine (services/raft SqliteStateMachine) on an in-memory
// SQLite. Each write becomes the command a database node would propose (a batch, or one
// migrate per schema version) and is applied at the next log index, so preconditions,
// expectChanges and migrations behave as in production, and a refused write rejects
// with the DatabaseClientError (same gRPC code, same message) the real client gives.
// Unlike production, a write is applied before exec() returns its promise (a test may
// rely on that). Reads go straight to the state machine. Membership calls and status
// are not supported.
import * as grpc from "@grpc/grpc-js";
import { checkCommand, encodeCommand, InvalidCommandError, type Command } from "../../../raft/src/db/command.ts";
import { migrationRequestId } from "../../../raft/src/db/migrations.ts";
import type { Param } from "../../../raft/src/db/param.ts";
import type { ApplyResult, StatementResult } from "../../../raft/src/db/result.ts";
import { SqliteStateMachine } from "../../../raft/src/db/state-machine.ts";
import { DatabaseClientError, execRequest } from "../../../raft/src/node/database-client.ts";
import { batchOf } from "../../../raft/src/node/database-service.ts";
import { paramToValue, valueToParam } from "../../../raft/src/node/value-codec.ts";
import { MIGRATIONS, type Database, type Migration } from "../../src/schema.ts";

export type MemoryDatabase = Database & {
  /** Closes the SQLite connection. */
  close(): void;
};

/** A value as the other side of the gRPC wire sees it (e.g. a bigint that fits becomes a number). */
const overTheWire = (p: Param): Param => valueToParam(paramToValue(p));

/** A fresh in-memory database with `migrations` applied (default: the gateway's MIGRATIONS). */
export async function memoryDatabase(migrations: Migration[] = MIGRATIONS): Promise<MemoryDatabase> {
  const sm = new SqliteStateMachine(":memory:");

  // What DatabaseNode.exec and the database service do with a command (services/raft/src/node).
  const apply = (cmd: Command): { index: number; results: StatementResult[] } => {
    const prior = sm.lookupRequest(cmd.requestId);
    if (prior) return { index: prior.appliedIndex, results: unwrap(prior.result) };
    const data = encodeCommand(cmd);
    try {
      checkCommand(cmd, data.length);
    } catch (e) {
      if (e instanceof InvalidCommandError) throw new DatabaseClientError(grpc.status.INVALID_ARGUMENT, e.message);
      throw e;
    }
    const index = sm.appliedIndex() + 1;
    return { index, results: unwrap(sm.apply(index, 1, data)) };
  };

  const unsupported = (what: string) => async (): Promise<never> => {
    throw new Error(`${what}: not supported in this test database`);
  };

  const db: MemoryDatabase = {
    async exec(statements, opts = {}) {
      // Encoded as the client sends it and decoded as the service applies it.
      const batch = batchOf(execRequest(statements, opts));
      const { index, results } = apply(batch);
      return { appliedIndex: index, results: results.map((r) => ({ changes: r.changes, lastInsertRowid: Number(r.lastInsertRowid) })) };
    },

    async query(sql, params = []) {
      let r;
      try {
        r = sm.query(sql, params.map(overTheWire));
      } catch (e) {
        throw new DatabaseClientError(grpc.status.INVALID_ARGUMENT, (e as Error).message);
      }
      return { columns: r.columns, rows: r.rows.map((row) => row.map(overTheWire)), appliedIndex: sm.appliedIndex() };
    },

    async migrate(list) {
      const from = sm.schemaVersion();
      const known = Math.max(0, ...list.map((m) => m.version));
      if (from > known) {
        throw new DatabaseClientError(grpc.status.FAILED_PRECONDITION, `the database schema is at version ${from}, newer than this caller knows (${known})`);
      }
      let index = sm.appliedIndex();
      for (const m of [...list].sort((a, b) => a.version - b.version)) {
        if (m.version <= sm.schemaVersion()) continue;
        index = apply({ kind: "migrate", requestId: migrationRequestId(m.version), version: m.version, statements: m.statements.map((sql) => ({ sql, params: [] })) }).index;
      }
      return { fromVersion: from, toVersion: sm.schemaVersion(), appliedIndex: index };
    },

    status: unsupported("status"),
    addNode: unsupported("addNode"),
    assignRole: unsupported("assignRole"),
    removeNode: unsupported("removeNode"),
    transferLeadership: unsupported("transferLeadership"),
    close: () => sm.close(),
  };
  await db.migrate(migrations);
  return db;
}

/** A recorded outcome as the client sees it: the results, or the error the service maps it to. */
function unwrap(result: ApplyResult): StatementResult[] {
  if (result.ok) return result.results;
  const { code, message } = result.error;
  const grpcCode = code === "precondition-failed" || code === "schema-version" ? grpc.status.FAILED_PRECONDITION : grpc.status.INVALID_ARGUMENT;
  throw new DatabaseClientError(grpcCode, message);
}
