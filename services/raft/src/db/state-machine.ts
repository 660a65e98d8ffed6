// The replicated state machine: committed Raft entries in, SQLite transactions
// out. Every replica applying the same entries in the same order must end with
// the same content, so every outcome here, including every failure, is a pure
// function of the database and the entry. Failures caused by the host (disk
// full, I/O errors) are the exception: they are thrown, not recorded, and the
// node must stop applying rather than diverge.
import { copyFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import Database from "better-sqlite3";
import { type Command, type Precondition, type Statement, checkCommand, decodeCommand } from "./command.ts";
import { contentHash } from "./content-hash.ts";
import { type Param, type Params, describeParam, fromSqlite, paramEquals } from "./param.ts";
import { type ApplyErrorCode, type ApplyResult, type StatementResult, decodeResult, encodeResult } from "./result.ts";
import { type RaftPosition, installFile, readRaftPosition, removeSidecars, sealSnapshotFile } from "./snapshot-files.ts";
import { NondeterministicSqlError, installDeterminismGuards } from "./sql-functions.ts";
import { leadingKeyword, tablesWrittenBy, tokenize } from "./sql-scan.ts";

export interface AppliedEvent {
  kind: "command" | "noop" | "conf" | "restore";
  index: number;
  term: number;
  /** null unless kind is "command" and the entry decoded. */
  requestId: string | null;
  /** Tables the command wrote (lower-cased); empty unless it ran and succeeded just now. */
  tables: string[];
  result: ApplyResult;
  /** The requestId had already been applied: nothing ran, result is the recorded one. */
  duplicate: boolean;
}

export interface RequestRecord {
  appliedIndex: number;
  result: ApplyResult;
}

export interface QueryResult {
  columns: string[];
  rows: Param[][];
}

export interface StateMachineOptions {
  /** Request records older than this many entries are pruned. Must be equal on every replica. */
  requestRetention?: number;
  statementCacheSize?: number;
  /** SQLite's page cache for this connection, in KiB. Default 2048 (see #open). */
  pageCacheKiB?: number;
}

const INTERNAL_SCHEMA = `
  CREATE TABLE IF NOT EXISTS _shoal_raft (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    applied_index INTEGER NOT NULL,
    applied_term INTEGER NOT NULL,
    schema_version INTEGER NOT NULL
  );
  INSERT OR IGNORE INTO _shoal_raft VALUES (0, 0, 0, 0);
  CREATE TABLE IF NOT EXISTS _shoal_requests (
    request_id TEXT PRIMARY KEY,
    applied_index INTEGER NOT NULL,
    result_json TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS _shoal_requests_by_index ON _shoal_requests (applied_index);
  CREATE TEMP TABLE IF NOT EXISTS _shoal_reset (x);
`;

/** Host failures: retrying may succeed, so recording them as results would diverge replicas. */
const ENVIRONMENTAL = /^SQLITE_(IOERR|FULL|NOMEM|BUSY|LOCKED|CORRUPT|CANTOPEN|READONLY|PROTOCOL|NOTADB|INTERRUPT|PERM|NOLFS|AUTH)/;
const QUERY_LEADING = new Set(["SELECT", "WITH", "VALUES", "EXPLAIN"]);
const OK_EMPTY: ApplyResult = { ok: true, results: [] };

/** Aborts a command's transaction with a recorded, deterministic error. */
class Abort extends Error {
  constructor(
    readonly code: ApplyErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const bindArgs = (params: Params): unknown[] => (Array.isArray(params) ? params : [params]);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;


export class SqliteStateMachine {
  readonly path: string;
  readonly #retention: number;
  readonly #cacheSize: number;
  readonly #pageCacheKiB: number;
  readonly #listeners = new Set<(e: AppliedEvent) => void>();
  #db!: Database.Database;
  #releaseGuards!: () => void;
  #cache = new Map<string, Database.Statement>();
  #position!: RaftPosition;
  #snapshotsRunning = 0;
  #closed = false;

  constructor(path: string, options: StateMachineOptions = {}) {
    this.path = path;
    this.#retention = options.requestRetention ?? 100_000;
    this.#cacheSize = options.statementCacheSize ?? 256;
    this.#pageCacheKiB = options.pageCacheKiB ?? 2048;
    this.#open();
  }

  #open(): void {
    this.#db = new Database(this.path);
    // The Raft log is the source of truth: a commit lost on power failure is
    // re-applied from it, since the applied index is committed with the data.
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = NORMAL");
    this.#db.pragma("foreign_keys = ON");
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection: a node
    // holding 100k rows (a 15 MB file) kept the whole file on its heap, beside the
    // kernel's page cache of the same file. Reads miss into that page cache instead.
    this.#db.pragma(`cache_size = -${this.#pageCacheKiB}`);
    this.#db.exec(INTERNAL_SCHEMA);
    this.#releaseGuards = installDeterminismGuards(this.#db);
    this.#position = readRaftPosition(this.#db);
  }

  #closeDb(): void {
    this.#cache.clear();
    this.#releaseGuards();
    this.#db.close();
  }

  appliedIndex(): number {
    return this.#position.index;
  }

  appliedTerm(): number {
    return this.#position.term;
  }

  schemaVersion(): number {
    return this.#position.schemaVersion;
  }

  onApplied(listener: (e: AppliedEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Applies a committed normal entry. Empty data is a leader's no-op. */
  apply(index: number, term: number, data: Uint8Array): ApplyResult {
    this.#checkNext(index);
    if (data.length === 0) return this.#advanceOnly("noop", index, term, null, OK_EMPTY);

    let cmd: Command;
    try {
      cmd = decodeCommand(data);
    } catch (e) {
      const result = failure("bad-command", `undecodable command: ${(e as Error).message}`);
      return this.#advanceOnly("command", index, term, null, result);
    }
    const recorded = this.lookupRequest(cmd.requestId);
    if (recorded) {
      this.#commit(() => this.#finish(index, term, null, null));
      this.#advanced(index, term);
      this.#emit({ kind: "command", index, term, requestId: cmd.requestId, tables: [], result: recorded.result, duplicate: true });
      return recorded.result;
    }
    try {
      // Repeated at apply time so an entry that bypassed validation is refused alike everywhere.
      checkCommand(cmd, data.length);
    } catch (e) {
      return this.#advanceOnly("command", index, term, cmd.requestId, failure("bad-command", (e as Error).message));
    }

    let result: ApplyResult;
    try {
      result = this.#commit(() => {
        const r: ApplyResult = { ok: true, results: this.#run(cmd) };
        this.#finish(index, term, cmd.requestId, r);
        return r;
      });
    } catch (e) {
      if (!(e instanceof Abort)) throw e;
      return this.#advanceOnly("command", index, term, cmd.requestId, failure(e.code, e.message));
    }
    this.#advanced(index, term, cmd.kind === "migrate" ? cmd.version : undefined);
    const tables = [...new Set(cmd.statements.flatMap((s) => tablesWrittenBy(s.sql)))];
    this.#emit({ kind: "command", index, term, requestId: cmd.requestId, tables, result, duplicate: false });
    return result;
  }

  /**
   * Runs `fn` (a run of apply/applyConf calls) inside one transaction, so many
   * entries cost one SQLite commit; each entry's own transaction becomes a
   * savepoint, so a failing entry still rolls back alone. If `fn` throws (a disk
   * error), everything rolls back and the caller must stop the node.
   */
  applyBatch<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }

  /** Applies a committed configuration entry: the state machine only records its position. */
  applyConf(index: number, term: number): void {
    this.#checkNext(index);
    this.#advanceOnly("conf", index, term, null, OK_EMPTY);
  }

  /** The recorded outcome of a request, if it was applied (and not yet pruned). */
  lookupRequest(requestId: string): RequestRecord | undefined {
    // Raw like every cached reader: query() may share this statement if given the same text.
    const row = this.#prepare("SELECT applied_index, result_json FROM _shoal_requests WHERE request_id = ?")
      .raw(true)
      .get(requestId) as [bigint, string] | undefined;
    return row && { appliedIndex: Number(row[0]), result: decodeResult(row[1]) };
  }

  /** A read-only query (internal tables included). Throws on anything that could write. */
  query(sql: string, params: Params = []): QueryResult {
    const lead = leadingKeyword(tokenize(sql));
    if (!QUERY_LEADING.has(lead)) {
      throw new Error(`query is read-only: ${lead || "this"} statement is not allowed (SELECT, WITH, VALUES, EXPLAIN)`);
    }
    const stmt = this.#prepare(sql);
    if (!stmt.readonly) throw new Error("query is read-only: the statement writes to the database");
    if (!stmt.reader) throw new Error("query: the statement returns no rows");
    const columns = stmt.columns().map((c) => c.name);
    const rows = (stmt.raw(true).all(...bindArgs(params)) as unknown[][]).map((r) => r.map(fromSqlite));
    return { columns, rows };
  }

  /**
   * Writes a consistent copy of the database to path and returns the position
   * it holds. Applies may continue meanwhile, so the position is read from the
   * copy itself rather than from this state machine.
   */
  async snapshotTo(path: string): Promise<{ index: number; term: number }> {
    const tmp = `${path}.snapshot-tmp`;
    rmSync(tmp, { force: true });
    removeSidecars(tmp);
    this.#snapshotsRunning++;
    try {
      await this.#db.backup(tmp);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    } finally {
      this.#snapshotsRunning--;
    }
    const { index, term } = sealSnapshotFile(tmp);
    installFile(tmp, path);
    return { index, term };
  }

  /** Replaces the whole database with a snapshot file (which is left in place). */
  restoreFrom(path: string): { index: number; term: number } {
    if (this.#snapshotsRunning > 0) throw new Error("cannot restore while a snapshot is being taken");
    if (resolve(path) === resolve(this.path)) throw new Error("cannot restore a database from itself");
    const tmp = `${this.path}.restore-tmp`;
    copyFileSync(path, tmp);
    try {
      sealSnapshotFile(tmp); // checks it is one of ours before anything is replaced
    } catch (e) {
      rmSync(tmp, { force: true });
      removeSidecars(tmp);
      throw e;
    }
    this.#closeDb();
    try {
      installFile(tmp, this.path);
    } finally {
      this.#open();
    }
    const { index, term } = this.#position;
    this.#emit({ kind: "restore", index, term, requestId: null, tables: [], result: OK_EMPTY, duplicate: false });
    return { index, term };
  }

  contentHash(options: { includeInternal?: boolean } = {}): string {
    return contentHash(this.#db, options.includeInternal ?? false);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeDb();
  }

  // ---- internals ----

  #checkNext(index: number): void {
    if (index !== this.#position.index + 1) {
      throw new Error(`entry ${index} out of order: the state machine has applied up to ${this.#position.index}`);
    }
  }

  #prepare(sql: string): Database.Statement {
    let stmt = this.#cache.get(sql);
    if (stmt) {
      this.#cache.delete(sql); // re-insert: the Map's order is the LRU order
    } else {
      stmt = this.#db.prepare(sql).safeIntegers(true);
      if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(sql, stmt);
    return stmt;
  }

  #commit<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }

  /** Runs a command's body inside the open transaction. Throws Abort on a deterministic failure. */
  #run(cmd: Command): StatementResult[] {
    // last_insert_rowid() and changes() are per connection; reset them so
    // commands see the same values whatever this connection did before.
    this.#prepare("INSERT OR REPLACE INTO temp._shoal_reset (rowid, x) VALUES (0, 0)").run();
    this.#prepare("DELETE FROM temp._shoal_reset WHERE rowid < 0").run();
    if (cmd.kind === "migrate") {
      const current = this.#position.schemaVersion;
      if (current !== cmd.version - 1) {
        throw new Abort(
          "schema-version",
          `migration to version ${cmd.version} needs schema version ${cmd.version - 1}, the database is at ${current}`,
        );
      }
    } else {
      cmd.preconditions.forEach((p, i) => this.#check(p, i));
    }
    const results = cmd.statements.map((s, i) => this.#execute(s, i));
    if (cmd.kind === "migrate") this.#prepare("UPDATE _shoal_raft SET schema_version = ? WHERE id = 0").run(cmd.version);
    return results;
  }

  #check(p: Precondition, i: number): void {
    const what = `precondition ${i}`;
    let rows: unknown[][];
    try {
      const stmt = this.#prepare(p.sql);
      if (!stmt.reader || !stmt.readonly) throw new Abort("bad-command", `${what} failed: not a read-only query`);
      rows = stmt.raw(true).all(...bindArgs(p.params)) as unknown[][];
    } catch (e) {
      return sqlFailure(what, e);
    }
    let problem: string | null = null;
    if (p.expectRows !== undefined && rows.length !== p.expectRows) {
      problem = `expected ${plural(p.expectRows, "row")}, got ${rows.length}`;
    } else if (p.expectValue !== undefined) {
      const got = rows.length > 0 ? fromSqlite(rows[0][0]) : undefined;
      if (got === undefined || !paramEquals(got, p.expectValue)) {
        problem = `expected value ${describeParam(p.expectValue)}, got ${got === undefined ? "no row" : describeParam(got)}`;
      }
    } else if (p.expectRows === undefined && rows.length === 0) {
      problem = "expected at least one row, got 0";
    }
    if (problem) throw new Abort("precondition-failed", `${what} failed${p.message ? ` (${p.message})` : ""}: ${problem}`);
  }

  #execute(s: Statement, i: number): StatementResult {
    const what = `statement ${i}`;
    let info: Database.RunResult;
    try {
      info = this.#prepare(s.sql).run(...bindArgs(s.params));
    } catch (e) {
      return sqlFailure(what, e);
    }
    if (s.expectChanges !== undefined && info.changes !== s.expectChanges) {
      throw new Abort(
        "precondition-failed",
        `${what} failed: expected ${plural(s.expectChanges, "change")}, got ${info.changes}`,
      );
    }
    return { changes: info.changes, lastInsertRowid: fromSqlite(info.lastInsertRowid) as number | bigint };
  }

  /** Records the outcome and the new position; runs inside the entry's transaction. */
  #finish(index: number, term: number, requestId: string | null, result: ApplyResult | null): void {
    if (requestId !== null && result !== null) {
      this.#prepare("INSERT INTO _shoal_requests (request_id, applied_index, result_json) VALUES (?, ?, ?)").run(
        requestId,
        index,
        encodeResult(result),
      );
    }
    this.#prepare("UPDATE _shoal_raft SET applied_index = ?, applied_term = ? WHERE id = 0").run(index, term);
    // Pruning by index keeps the table bounded identically on every replica.
    if (index > this.#retention) {
      this.#prepare("DELETE FROM _shoal_requests WHERE applied_index < ?").run(index - this.#retention);
    }
  }

  /** Advances past an entry that changes no data, in its own small transaction. */
  #advanceOnly(
    kind: AppliedEvent["kind"],
    index: number,
    term: number,
    requestId: string | null,
    result: ApplyResult,
  ): ApplyResult {
    this.#commit(() => this.#finish(index, term, requestId, requestId === null ? null : result));
    this.#advanced(index, term);
    this.#emit({ kind, index, term, requestId, tables: [], result, duplicate: false });
    return result;
  }

  /** Mirrors a committed position in memory. */
  #advanced(index: number, term: number, schemaVersion = this.#position.schemaVersion): void {
    this.#position = { index, term, schemaVersion };
  }

  #emit(event: AppliedEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (e) {
        // A watcher's bug must not stop the state machine.
        process.emitWarning(`onApplied listener threw: ${(e as Error)?.message ?? e}`);
      }
    }
  }
}

function failure(code: ApplyErrorCode, message: string): ApplyResult {
  return { ok: false, error: { code, message } };
}

/** Turns an error from SQLite (or a guard function) into an Abort; rethrows host failures. */
function sqlFailure(what: string, e: unknown): never {
  if (e instanceof Abort) throw e;
  if (e instanceof NondeterministicSqlError) throw new Abort("bad-command", `${what} failed: ${e.message}`);
  if (e instanceof Database.SqliteError && ENVIRONMENTAL.test(e.code)) throw e;
  if (e instanceof Error) throw new Abort("sql-error", `${what} failed: ${e.message}`);
  throw e;
}
