// A digest of a database's logical content, so replicas can be compared
// without caring how SQLite laid out the pages.
import { createHash, type Hash } from "node:crypto";
import type Database from "better-sqlite3";

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

// Every item is tagged and length-prefixed so distinct contents never
// serialise to the same byte stream.
function feed(h: Hash, tag: string, bytes: Uint8Array): void {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  h.update(tag).update(len).update(bytes);
}

function feedValue(h: Hash, v: unknown): void {
  if (v === null) feed(h, "n", new Uint8Array());
  else if (typeof v === "bigint") feed(h, "i", Buffer.from(v.toString()));
  else if (typeof v === "number") {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v); // exact, and tells -0 from 0
    feed(h, "r", b);
  } else if (typeof v === "string") feed(h, "t", Buffer.from(v, "utf8"));
  else if (v instanceof Uint8Array) feed(h, "b", v);
  else throw new Error(`unexpected SQLite value ${String(v)}`);
}

/**
 * sha256 over the schema version, the schema (minus SQLite's own objects and, unless
 * includeInternal, the state machine's `_shoal_` tables) and every table's rows
 * in primary-key order (rowid order when there is no declared key).
 */
export function contentHash(db: Database.Database, includeInternal = false): string {
  const h = createHash("sha256");
  const schema = db
    .prepare(
      `SELECT type, name, tbl_name, sql FROM sqlite_schema
       WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ${includeInternal ? "" : "AND name NOT LIKE '\\_shoal\\_%' ESCAPE '\\'"}
       ORDER BY type, name`,
    )
    .raw(true)
    .all() as [string, string, string, string | null][];
  for (const row of schema) for (const v of row) feedValue(h, v);
  // The schema version is part of the content even when the table holding it is not.
  feedValue(h, db.prepare("SELECT schema_version FROM _shoal_raft").pluck().safeIntegers(true).get() ?? null);

  for (const [type, name, , sql] of schema) {
    if (type !== "table" || sql?.toUpperCase().startsWith("CREATE VIRTUAL")) continue;
    const columns = db.prepare("SELECT name, pk FROM pragma_table_info(?)").all(name) as { name: string; pk: number }[];
    const keys = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
    const order = keys.length > 0 ? keys.map((c) => quote(c.name)).join(", ") : "rowid";
    feed(h, "T", Buffer.from(name, "utf8"));
    const rows = db.prepare(`SELECT * FROM ${quote(name)} ORDER BY ${order}`).raw(true).safeIntegers(true);
    for (const row of rows.iterate() as Iterable<unknown[]>) {
      feed(h, "R", new Uint8Array());
      for (const v of row) feedValue(h, v);
    }
  }
  return h.digest("hex");
}
