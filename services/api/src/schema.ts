// The gateway's tables, as versioned migrations applied through the replicated
// database's Migrate RPC (each migration is one log entry, so every replica changes
// its schema at the same index).
//
// The database has ONE schema version sequence for the whole cluster. The gateway is
// the first service to own tables, so this list is currently the cluster schema; when
// another service needs tables, move this list to a module every service imports and
// append to it (never renumber or edit a released migration).
import type { ClusterDatabaseClient } from "../../raft/src/node/database-client.ts";

/** What the gateway needs from the replicated database (ClusterDatabaseClient fits). */
export type Database = Pick<ClusterDatabaseClient, "exec" | "query" | "migrate">;

export interface Migration {
  version: number;
  statements: string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    statements: [
      // Server (cluster-wide) configuration, LXD's `config` of GET /1.0. Secrets such
      // as core.trust_password are stored hashed.
      "CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
      // Trusted client (and later server) certificates, by LXD fingerprint
      // (lowercase hex SHA-256 of the DER). `certificate` is PEM; `projects` a JSON array.
      `CREATE TABLE certificates (
        fingerprint TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        certificate TEXT NOT NULL,
        restricted INTEGER NOT NULL DEFAULT 0,
        projects TEXT NOT NULL DEFAULT '[]'
      )`,
    ],
  },
];

/** Applies the migrations this gateway knows; fails if the database is newer than this code. */
export async function applySchema(db: Database): Promise<{ fromVersion: number; toVersion: number }> {
  return db.migrate(MIGRATIONS);
}
