// Which tables a batch of this gateway's writes changes, read from the SQL the same
// way the database's Watch stream reports them (services/raft/src/db/sql-scan.ts), so
// a write drops only the cached reads of those tables. Undefined when a statement's
// tables cannot be told: the caller then drops everything.
import { tablesWrittenBy as tablesOf } from "../../../raft/src/db/sql-scan.ts";

export function tablesWrittenBy(statements: readonly { sql: string }[]): string[] | undefined {
  const out = new Set<string>();
  for (const { sql } of statements) {
    const tables = tablesOf(sql);
    // A statement that writes no table we can name (or only reads): tell nothing apart.
    if (tables.length === 0) return undefined;
    for (const t of tables) out.add(t);
  }
  return [...out];
}
