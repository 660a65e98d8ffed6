// The write-ahead log of a Raft node: entries and hard state interleaved in one
// append-only stream of checksummed records, so a single fdatasync makes a whole
// Ready batch durable (group commit). The stream is cut into segments so that
// compaction can delete whole files once a snapshot covers them.

import { fdatasync } from "node:fs";
import { closeSync, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { Entry, HardState } from "../core/types.ts";
import { StorageCorruptionError } from "./corruption-error.ts";
import { fsyncDir } from "./fsync-dir.ts";
import { scanFrames } from "./wal-frame.ts";
import {
  INDEX_RECORD_BYTES,
  decodeRecord,
  entryRecordBytes,
  hardStateRecordBytes,
  segmentHeaderRecordBytes,
  writeEntry,
  writeHardState,
  writeReset,
  writeSegmentHeader,
  writeTruncate,
} from "./wal-record.ts";
import { EMPTY_HARD_STATE, LogReplay } from "./wal-replay.ts";
import { createSegment, listSegments, segmentFileName, writeFully, zeroFill, type SegmentName } from "./wal-segment.ts";

export interface WalOptions {
  /** A segment is closed and a new one started once appending would exceed this. Default 8 MiB. */
  segmentBytes?: number;
  /** Zero-fill each new segment to segmentBytes up front. Default true. */
  preallocate?: boolean;
}

/** A torn or corrupt tail found in the last segment and cut off on open. */
export interface WalRepair {
  segment: string;
  /** Where the intact prefix ends; everything from here on was discarded. */
  offset: number;
  truncatedBytes: number;
  reason: string;
}

export interface WalState {
  hardState: HardState;
  /** Every live entry on disk, ascending and contiguous, truncations applied. */
  entries: Entry[];
  /** Index of entries[0], or of the next entry to append when there are none. */
  firstIndex: number;
  lastIndex: number;
  repaired?: WalRepair;
}

export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
/** Saves up to this size are encoded into one reused buffer (see writeBuffer). */
const SCRATCH_MAX_BYTES = 1 << 20;

export class Wal {
  private closed = false;
  /** Set once a write failed half-way: the on-disk tail is unknown, so refuse to go on. */
  private failure: unknown;
  /** A segment was created since the last sync, so the directory needs an fsync too. */
  private dirDirty = false;
  private scratch = Buffer.alloc(0);

  private constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    private readonly preallocate: boolean,
    private readonly segments: SegmentName[],
    private fd: number,
    /** Next write position in the current segment. */
    private offset: number,
    /** End of the current segment's header: a segment holding only a header never rolls over. */
    private headerEnd: number,
    private lastIdx: number,
    private hs: HardState,
  ) {}

  /** Opens (or creates) the WAL in `dir` and replays it. */
  static open(dir: string, opts: WalOptions = {}): { wal: Wal; state: WalState } {
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    const preallocate = opts.preallocate ?? true;
    mkdirSync(dir, { recursive: true });
    const segments = listSegments(dir);

    if (segments.length === 0) {
      const hardState = { ...EMPTY_HARD_STATE };
      const first: SegmentName = { seq: 0, firstIndex: 1, name: segmentFileName(0, 1) };
      const header = encodeHeader(first.seq, first.firstIndex, hardState);
      const fd = createSegment(dir, first.name, header, preallocate ? segmentBytes : 0);
      fsyncDir(dir);
      const wal = new Wal(dir, segmentBytes, preallocate, [first], fd, header.length, header.length, 0, hardState);
      return { wal, state: { hardState: { ...hardState }, entries: [], firstIndex: 1, lastIndex: 0 } };
    }

    for (let i = 1; i < segments.length; i++) {
      if (segments[i].seq !== segments[i - 1].seq + 1) {
        throw new StorageCorruptionError(join(dir, segments[i].name), 0, `segment ${segments[i - 1].seq + 1} is missing`);
      }
    }

    const replay = new LogReplay();
    let repaired: WalRepair | undefined;
    let end = 0;
    let headerEnd = 0;
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i];
      const path = join(dir, segment.name);
      const buf = readFileSync(path);
      let records = 0;
      const scan = scanFrames(buf, (off, payloadStart, payloadEnd) => {
        try {
          replay.apply(decodeRecord(buf, payloadStart, payloadEnd), segment, records === 0);
        } catch (err) {
          throw new StorageCorruptionError(path, off, (err as Error).message);
        }
        if (records++ === 0) headerEnd = payloadEnd;
      });
      if (records === 0) {
        // Headers are synced before a segment gets its name, so this is never a torn write.
        throw new StorageCorruptionError(path, 0, scan.fault?.reason ?? "segment has no header");
      }
      if (scan.fault) {
        if (i !== segments.length - 1) {
          throw new StorageCorruptionError(path, scan.fault.offset, `${scan.fault.reason} (not the last segment)`);
        }
        repaired = { segment: path, offset: scan.end, truncatedBytes: buf.length - scan.end, reason: scan.fault.reason };
      }
      end = scan.end;
    }

    const last = segments[segments.length - 1];
    const fd = openSync(join(dir, last.name), "r+");
    try {
      if (repaired) {
        // Cut the bad tail, then restore zero fill so the next open sees a clean end.
        ftruncateSync(fd, end);
        if (preallocate) zeroFill(fd, end, segmentBytes);
        fdatasyncSync(fd);
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const wal = new Wal(dir, segmentBytes, preallocate, segments, fd, end, headerEnd, replay.lastIndex, replay.hardState);
    const state: WalState = {
      hardState: { ...replay.hardState },
      entries: replay.entries,
      firstIndex: replay.firstIndex,
      lastIndex: replay.lastIndex,
    };
    if (repaired) state.repaired = repaired;
    return { wal, state };
  }

  get lastIndex(): number {
    return this.lastIdx;
  }

  get hardState(): HardState {
    return { ...this.hs };
  }

  /**
   * Appends one Ready batch with a single write; call sync() to make it durable.
   * Order inside the batch follows Ready: `snapshot` (the log restarts after
   * snapshot.index), then `entries` (an entry at or below lastIndex replaces
   * that entry and everything after it), then `hardState`.
   */
  save(hardState: HardState | undefined, entries: readonly Entry[] = [], snapshot?: { index: number }): void {
    this.checkUsable();
    const base = snapshot ? snapshot.index : this.lastIdx;
    let bytes = snapshot ? INDEX_RECORD_BYTES : 0;
    let truncate = false;
    if (entries.length > 0) {
      const first = entries[0].index;
      if (first > base + 1) throw new RangeError(`WAL: entry ${first} leaves a gap after index ${base}`);
      if (snapshot && first !== base + 1) {
        throw new RangeError(`WAL: entries after a snapshot at ${base} must start at ${base + 1}, got ${first}`);
      }
      if (first <= base) {
        truncate = true;
        bytes += INDEX_RECORD_BYTES;
      }
      for (let i = 0; i < entries.length; i++) {
        if (entries[i].index !== first + i) throw new RangeError(`WAL: entries are not contiguous at ${entries[i].index}`);
        bytes += entryRecordBytes(entries[i]);
      }
    }
    if (hardState) bytes += hardStateRecordBytes(hardState);
    if (bytes === 0) return;

    try {
      if (this.offset + bytes > this.segmentBytes && this.offset > this.headerEnd) this.rollover();
      const buf = this.writeBuffer(bytes);
      let p = 0;
      if (snapshot) p = writeReset(buf, p, snapshot.index);
      if (truncate) p = writeTruncate(buf, p, entries[0].index);
      for (const e of entries) p = writeEntry(buf, p, e);
      if (hardState) p = writeHardState(buf, p, hardState);
      writeFully(this.fd, buf, this.offset);
      this.offset += bytes;
    } catch (err) {
      this.failure = err;
      throw err;
    }
    if (entries.length > 0) this.lastIdx = entries[entries.length - 1].index;
    else if (snapshot) this.lastIdx = snapshot.index;
    if (hardState) this.hs = { ...hardState };
  }

  /**
   * A buffer for one save. Saves are written synchronously, so one scratch buffer
   * serves them all: a fresh buffer per save was garbage of the size of every
   * entry written, freed only by the next GC. Larger saves get their own buffer.
   */
  private writeBuffer(bytes: number): Buffer {
    if (bytes > SCRATCH_MAX_BYTES) return Buffer.allocUnsafe(bytes);
    if (this.scratch.length < bytes) {
      this.scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX_BYTES, Math.max(bytes, 2 * this.scratch.length, 64 << 10)));
    }
    return this.scratch.subarray(0, bytes);
  }

  /** Makes everything saved so far durable: fdatasync of the current segment (and its directory entry if new). */
  sync(): void {
    this.checkUsable();
    try {
      fdatasyncSync(this.fd);
      this.syncDirIfNeeded();
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  /** A segment was created since the last sync: make its name durable too. */
  private syncDirIfNeeded(): void {
    if (!this.dirDirty) return;
    fsyncDir(this.dir);
    this.dirDirty = false;
  }

  /**
   * sync(), with the fdatasync on libuv's thread pool so the event loop keeps
   * moving (sending the leader's appends, receiving acknowledgements) meanwhile.
   * The caller must not save() again until it resolves.
   */
  async syncAsync(): Promise<void> {
    this.checkUsable();
    try {
      await new Promise<void>((resolve, reject) => fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
      this.syncDirIfNeeded();
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  /**
   * Deletes the oldest segments whose entries are all <= `index` (a snapshot
   * covers them). The current segment is never deleted. Returns how many went.
   */
  compact(index: number): number {
    this.checkUsable();
    let removed = 0;
    // segments[i + 1].firstIndex - 1 is the last index segment i ever held.
    while (removed < this.segments.length - 1 && this.segments[removed + 1].firstIndex - 1 <= index) {
      // Oldest first, each unlink made durable: a crash leaves a contiguous run of segments.
      unlinkSync(join(this.dir, this.segments[removed].name));
      fsyncDir(this.dir);
      removed++;
    }
    this.segments.splice(0, removed);
    return removed;
  }

  /** Closes the current segment. Does not sync: call sync() first if the last save must be durable. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Starts the next segment with the current hard state, after trimming the finished one. */
  private rollover(): void {
    fdatasyncSync(this.fd);
    // Trim the unused preallocation so only the last segment ever ends in zero fill.
    ftruncateSync(this.fd, this.offset);
    fdatasyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    const prev = this.segments[this.segments.length - 1];
    const next: SegmentName = {
      seq: prev.seq + 1,
      firstIndex: this.lastIdx + 1,
      name: segmentFileName(prev.seq + 1, this.lastIdx + 1),
    };
    const header = encodeHeader(next.seq, next.firstIndex, this.hs);
    this.fd = createSegment(this.dir, next.name, header, this.preallocate ? this.segmentBytes : 0);
    this.segments.push(next);
    this.offset = header.length;
    this.headerEnd = header.length;
    this.dirDirty = true;
  }

  private checkUsable(): void {
    if (this.closed) throw new Error("WAL is closed");
    if (this.failure !== undefined) throw new Error("WAL failed on an earlier write; reopen it", { cause: this.failure });
  }
}

function encodeHeader(seq: number, firstIndex: number, hs: HardState): Buffer {
  const header = Buffer.allocUnsafe(segmentHeaderRecordBytes(hs));
  writeSegmentHeader(header, 0, seq, firstIndex, hs);
  return header;
}
