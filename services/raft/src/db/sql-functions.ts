// Apply-time defence against non-deterministic SQL. validateCommand refuses it
// by reading the text, but values can arrive through parameters ('now' bound to
// date(?)) or through old schema (a DEFAULT CURRENT_TIMESTAMP). Application-
// defined functions take precedence over SQLite's built-ins, so overriding the
// offending ones makes such a command fail the same way on every replica.
import Database from "better-sqlite3";
import { CLOCK_ARGUMENTS, DATE_FUNCTIONS } from "./sql-scan.ts";

export class NondeterministicSqlError extends Error {
  override name = "NondeterministicSqlError";
}

/** Installs the overrides on db. Returns a function releasing what they hold. */
export function installDeterminismGuards(db: Database.Database): () => void {
  const refuse = (what: string) => () => {
    throw new NondeterministicSqlError(`${what} is not allowed: replicas would diverge`);
  };
  // Registered with their built-in arities so they shadow exactly those.
  db.function("random", { deterministic: true }, refuse("random()"));
  db.function("randomblob", { deterministic: true }, (_n: unknown) => refuse("randomblob()")());
  db.function("total_changes", { deterministic: true }, refuse("total_changes()"));
  for (const kw of ["current_timestamp", "current_date", "current_time"]) {
    db.function(kw, { deterministic: true }, refuse(kw.toUpperCase()));
  }

  // Date/time functions stay usable with explicit times: the wrapper refuses
  // clock and time-zone inputs, then delegates to the real built-in on a private
  // in-memory connection that has no overrides.
  const helper = new Database(":memory:");
  const prepared = new Map<string, Database.Statement>();
  for (const name of DATE_FUNCTIONS) {
    db.function(name, { varargs: true, deterministic: true, safeIntegers: true }, (...args: unknown[]) => {
      const times = name === "strftime" ? args.slice(1) : args; // strftime's first argument is the format
      if (times.length === 0) throw new NondeterministicSqlError(`${name}() without a time reads the clock`);
      for (const a of times) {
        if (typeof a === "string" && CLOCK_ARGUMENTS.has(a.trim().toLowerCase())) {
          throw new NondeterministicSqlError(`${name}() with '${a}' depends on the host's clock or time zone`);
        }
      }
      const key = `${name}/${args.length}`;
      let stmt = prepared.get(key);
      if (!stmt) {
        stmt = helper.prepare(`SELECT ${name}(${args.map(() => "?").join(",")})`).pluck().safeIntegers(true);
        prepared.set(key, stmt);
      }
      return stmt.get(...args);
    });
  }
  return () => helper.close();
}
