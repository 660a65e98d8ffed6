import { closeSync, fsyncSync, openSync } from "node:fs";

/**
 * fsync a directory so that creations, renames and unlinks inside it are
 * durable. Without it a crash can forget a freshly renamed WAL segment or
 * snapshot even though the file's own data was synced.
 */
export function fsyncDir(dir: string): void {
  fsyncPath(dir);
}

/** fsync a file or directory by path. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
