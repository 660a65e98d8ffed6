// WAL segment files: naming, listing and creation. A segment is named
// wal-<seq>-<firstIndex>.log, where firstIndex is the index the log expected
// next when the segment was opened; that is what lets compaction decide from
// names alone that a whole segment lies below a snapshot.

import { closeSync, fdatasyncSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

export interface SegmentName {
  seq: number;
  firstIndex: number;
  name: string;
}

const SEGMENT_RE = /^wal-(\d{16})-(\d{16})\.log$/;
const TEMP_SUFFIX = ".tmp";

export function segmentFileName(seq: number, firstIndex: number): string {
  return `wal-${pad(seq)}-${pad(firstIndex)}.log`;
}

function pad(n: number): string {
  return String(n).padStart(16, "0");
}

/**
 * The segments in `dir`, ascending by sequence. Leftover temp files (a crash
 * while creating a segment) are deleted: they were never renamed into place,
 * so nothing in them was ever acknowledged.
 */
export function listSegments(dir: string): SegmentName[] {
  const segments: SegmentName[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith("wal-") && name.endsWith(TEMP_SUFFIX)) {
      unlinkSync(join(dir, name));
      continue;
    }
    const m = SEGMENT_RE.exec(name);
    if (m) segments.push({ seq: Number(m[1]), firstIndex: Number(m[2]), name });
  }
  return segments.sort((a, b) => a.seq - b.seq);
}

const ZERO_CHUNK_BYTES = 1 << 20;

/**
 * Writes zeros over [from, to) of a file. Used to preallocate a segment once,
 * so later appends overwrite allocated blocks and fdatasync has no size or
 * block-map metadata to flush.
 */
export function zeroFill(fd: number, from: number, to: number): void {
  if (to <= from) return;
  const zeros = Buffer.alloc(Math.min(ZERO_CHUNK_BYTES, to - from));
  for (let p = from; p < to; ) {
    p += writeSync(fd, zeros, 0, Math.min(zeros.length, to - p), p);
  }
}

/** Writes all of buf at `position`, looping over short writes. */
export function writeFully(fd: number, buf: Buffer, position: number): void {
  for (let done = 0; done < buf.length; ) {
    done += writeSync(fd, buf, done, buf.length - done, position + done);
  }
}

/**
 * Creates a segment holding `header` (already framed) followed by zero fill up
 * to `preallocateBytes`, synced, then renamed into place: a segment under its
 * final name always starts with an intact header. The caller must fsync the
 * directory before acknowledging anything written to the segment.
 * Returns an fd open for writing.
 */
export function createSegment(dir: string, name: string, header: Buffer, preallocateBytes: number): number {
  const finalPath = join(dir, name);
  const tempPath = finalPath + TEMP_SUFFIX;
  const fd = openSync(tempPath, "w+");
  try {
    writeFully(fd, header, 0);
    zeroFill(fd, header.length, preallocateBytes);
    fdatasyncSync(fd);
    renameSync(tempPath, finalPath);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}
