// On-disk layout of the snapshot store. A published snapshot is a directory
// snap-<index>-<term>/ holding meta.json (SnapshotMeta) and data (the state
// machine's bytes). Anything named tmp-* is work in progress or pending
// deletion and is removed when the store is opened.

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { SnapshotMeta } from "../core/types.ts";

export const META_FILE = "meta.json";
export const DATA_FILE = "data";
export const TEMP_PREFIX = "tmp-";

const PUBLISHED_RE = /^snap-(\d{16})-(\d{16})$/;

function pad(n: number): string {
  return String(n).padStart(16, "0");
}

export function snapshotDirName(meta: { index: number; term: number }): string {
  return `snap-${pad(meta.index)}-${pad(meta.term)}`;
}

/** Name of the temp directory a chunked receive of `meta` writes into; fixed so a receive can resume. */
export function receiveDirName(meta: { index: number; term: number }): string {
  return `${TEMP_PREFIX}recv-${pad(meta.index)}-${pad(meta.term)}`;
}

export function parseSnapshotDirName(name: string): { index: number; term: number } | undefined {
  const m = PUBLISHED_RE.exec(name);
  return m ? { index: Number(m[1]), term: Number(m[2]) } : undefined;
}

/** Writes a small file and fsyncs it before returning. */
export function writeFileDurably(path: string, content: string | Buffer): void {
  const fd = openSync(path, "w");
  try {
    const buf = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, buf.length - done, done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export { fsyncPath as fsyncFile } from "./fsync-dir.ts";

/**
 * Removes a directory tree so that a crash half-way never leaves a
 * half-deleted snapshot under a published name: rename to tmp-* first (atomic),
 * then delete at leisure.
 */
export function removeDir(path: string): void {
  const name = basename(path);
  const doomed = name.startsWith(TEMP_PREFIX) ? path : join(dirname(path), `${TEMP_PREFIX}del-${name}`);
  if (doomed !== path) {
    rmSync(doomed, { recursive: true, force: true });
    renameSync(path, doomed);
  }
  rmSync(doomed, { recursive: true, force: true });
}

export function encodeMeta(meta: SnapshotMeta): string {
  return JSON.stringify({ index: meta.index, term: meta.term, config: meta.config }, null, 2) + "\n";
}

/** Parses meta.json; throws an Error saying what is wrong. */
export function decodeMeta(text: string): SnapshotMeta {
  const raw: unknown = JSON.parse(text);
  if (typeof raw !== "object" || raw === null) throw new Error("meta is not an object");
  const { index, term, config } = raw as Record<string, unknown>;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term)) throw new Error("meta index/term are not integers");
  if (typeof config !== "object" || config === null || typeof (config as { members?: unknown }).members !== "object") {
    throw new Error("meta config has no members");
  }
  return { index: index as number, term: term as number, config: config as SnapshotMeta["config"] };
}
