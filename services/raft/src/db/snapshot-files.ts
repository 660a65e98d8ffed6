// File handling for snapshots: making a backup self-contained, reading the
// Raft position recorded inside it, and swapping a database file atomically.
import { fsyncPath } from "../storage/fsync-dir.ts";
import { closeSync, copyFileSync, fsyncSync, openSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

export interface RaftPosition {
  index: number;
  term: number;
  schemaVersion: number;
}

/** The applied index, term and schema version stored in a database file. */
export function readRaftPosition(db: Database.Database): RaftPosition {
  const row = db
    .prepare("SELECT applied_index AS \"index\", applied_term AS term, schema_version AS schemaVersion FROM _shoal_raft WHERE id = 0")
    .get() as RaftPosition | undefined;
  if (!row) throw new Error("not a Shoal state machine database: _shoal_raft is empty");
  return row;
}

/**
 * Turns a fresh backup into a single self-contained file (rollback journal, so
 * no -wal beside it) and returns the position it holds.
 */
export function sealSnapshotFile(path: string): RaftPosition {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.pragma("journal_mode = DELETE");
    return readRaftPosition(db);
  } finally {
    db.close();
  }
}

/** Opens a snapshot file read-only to check it and read its position. */
export function inspectSnapshotFile(path: string): RaftPosition {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return readRaftPosition(db);
  } finally {
    db.close();
  }
}

export { fsyncPath };

/** Removes a database's -wal and -shm files. */
export function removeSidecars(dbPath: string): void {
  rmSync(`${dbPath}-wal`, { force: true });
  rmSync(`${dbPath}-shm`, { force: true });
}

/** Moves a complete file into place: fsync it, drop stale sidecars, rename, fsync the directory. */
export function installFile(tmp: string, dest: string): void {
  fsyncPath(tmp);
  // Sidecars go first: a stale WAL next to the new file would be replayed into it.
  removeSidecars(dest);
  renameSync(tmp, dest);
  fsyncPath(dirname(dest));
}

/** Atomically replaces dest with a copy of src. */
export function replaceFile(src: string, dest: string): void {
  const tmp = `${dest}.restore-tmp`;
  copyFileSync(src, tmp);
  installFile(tmp, dest);
}
