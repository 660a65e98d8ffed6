// Versioned schema migrations, run through the Raft log as Migrate commands so
// every replica changes its schema at the same index. The schema itself is
// defined by the services that own the tables; this is only the mechanism.
import type { Migrate, Statement } from "./command.ts";

export interface Migration {
  /** The schema version after this migration; versions run 1, 2, 3... */
  version: number;
  /** Plain SQL, or statements with parameters. */
  statements: (string | Statement)[];
}

/**
 * The requestId for a migration. Deterministic on purpose: when two nodes both
 * propose the same migration, the second is a duplicate and gets the first's
 * result instead of a schema-version error.
 */
export const migrationRequestId = (version: number) => `shoal-schema-migration-v${version}`;

/** Throws unless versions are 1, 2, 3... in order with no gaps. */
export function checkMigrations(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration at position ${i} has version ${m.version}, expected ${i + 1}`);
    }
    if (m.statements.length === 0) throw new Error(`migration ${m.version} has no statements`);
  });
}

export function latestVersion(migrations: readonly Migration[]): number {
  checkMigrations(migrations);
  return migrations.length;
}

/**
 * The Migrate commands that bring a database at currentVersion up to the
 * latest version, in the order they must be proposed. Empty when the database
 * is current, or newer than these migrations (a node running older code).
 */
export function pendingMigrations(migrations: readonly Migration[], currentVersion: number): Migrate[] {
  checkMigrations(migrations);
  return migrations
    .filter((m) => m.version > currentVersion)
    .map((m) => ({
      kind: "migrate",
      requestId: migrationRequestId(m.version),
      version: m.version,
      statements: m.statements.map((s) => (typeof s === "string" ? { sql: s, params: [] } : s)),
    }));
}
