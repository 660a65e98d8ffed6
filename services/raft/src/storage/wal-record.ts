// Binary payloads of WAL records. Each payload starts with a type byte; numbers
// are u64 little endian (limited to 2^53, JavaScript's safe integers). Writers
// place a whole framed record into a caller-sized buffer so that a Ready batch
// is encoded into one allocation.

import type { Entry, EntryType, HardState } from "../core/types.ts";
import { FRAME_HEADER_BYTES, sealFrame } from "./wal-frame.ts";

export const RecordType = {
  /** First record of every segment: its sequence, first index and the hard state at creation. */
  SegmentHeader: 1,
  HardState: 2,
  Entry: 3,
  /** Entries from `index` on are discarded (a new leader overwrote a conflicting suffix). */
  Truncate: 4,
  /** Every entry is discarded; the log resumes at `index` + 1 (a snapshot was installed). */
  Reset: 5,
} as const;

export type WalRecord =
  | { type: "segment-header"; seq: number; firstIndex: number; hardState: HardState }
  | { type: "hard-state"; hardState: HardState }
  | { type: "entry"; entry: Entry }
  | { type: "truncate"; index: number }
  | { type: "reset"; index: number };

const U64 = 8;
const ENTRY_FIXED = 1 + U64 + U64 + 1; // type, index, term, entry type
const HARD_STATE_FIXED = U64 + U64 + 2; // term, commit, vote length

// ---- sizes (framed) ----

export function hardStateRecordBytes(hs: HardState): number {
  return FRAME_HEADER_BYTES + 1 + HARD_STATE_FIXED + Buffer.byteLength(hs.vote, "utf8");
}

export function segmentHeaderRecordBytes(hs: HardState): number {
  return hardStateRecordBytes(hs) + 2 * U64;
}

export function entryRecordBytes(e: Entry): number {
  return FRAME_HEADER_BYTES + ENTRY_FIXED + e.data.length;
}

export const INDEX_RECORD_BYTES = FRAME_HEADER_BYTES + 1 + U64;

// ---- writers: each returns the offset just past the framed record ----

export function writeSegmentHeader(buf: Buffer, off: number, seq: number, firstIndex: number, hs: HardState): number {
  let p = off + FRAME_HEADER_BYTES;
  buf[p++] = RecordType.SegmentHeader;
  p = writeU64(buf, p, seq);
  p = writeU64(buf, p, firstIndex);
  p = writeHardStateBody(buf, p, hs);
  return sealFrame(buf, off, p - off - FRAME_HEADER_BYTES);
}

export function writeHardState(buf: Buffer, off: number, hs: HardState): number {
  let p = off + FRAME_HEADER_BYTES;
  buf[p++] = RecordType.HardState;
  p = writeHardStateBody(buf, p, hs);
  return sealFrame(buf, off, p - off - FRAME_HEADER_BYTES);
}

export function writeEntry(buf: Buffer, off: number, e: Entry): number {
  let p = off + FRAME_HEADER_BYTES;
  buf[p++] = RecordType.Entry;
  p = writeU64(buf, p, e.index);
  p = writeU64(buf, p, e.term);
  buf[p++] = entryTypeCode(e.type);
  buf.set(e.data, p);
  p += e.data.length;
  return sealFrame(buf, off, p - off - FRAME_HEADER_BYTES);
}

export function writeTruncate(buf: Buffer, off: number, index: number): number {
  return writeIndexRecord(buf, off, RecordType.Truncate, index);
}

export function writeReset(buf: Buffer, off: number, index: number): number {
  return writeIndexRecord(buf, off, RecordType.Reset, index);
}

function writeIndexRecord(buf: Buffer, off: number, type: number, index: number): number {
  let p = off + FRAME_HEADER_BYTES;
  buf[p++] = type;
  p = writeU64(buf, p, index);
  return sealFrame(buf, off, p - off - FRAME_HEADER_BYTES);
}

function writeHardStateBody(buf: Buffer, p: number, hs: HardState): number {
  p = writeU64(buf, p, hs.term);
  p = writeU64(buf, p, hs.commit);
  const voteBytes = buf.write(hs.vote, p + 2, "utf8");
  buf.writeUInt16LE(voteBytes, p);
  return p + 2 + voteBytes;
}

function writeU64(buf: Buffer, p: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`WAL: ${n} is not a non-negative safe integer`);
  buf.writeUInt32LE(n >>> 0, p);
  buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), p + 4);
  return p + U64;
}

function entryTypeCode(type: EntryType): number {
  switch (type) {
    case "normal":
      return 0;
    case "conf":
      return 1;
  }
}

// ---- reader ----

/**
 * Decodes the payload buf[start, end) of a frame whose checksum already
 * matched. A failure here is not a torn write but an unknown format, so it
 * throws (the caller turns it into a corruption error).
 */
export function decodeRecord(buf: Buffer, start: number, end: number): WalRecord {
  const r = new Reader(buf, start, end);
  const type = r.u8();
  let record: WalRecord;
  switch (type) {
    case RecordType.SegmentHeader:
      record = { type: "segment-header", seq: r.u64(), firstIndex: r.u64(), hardState: r.hardState() };
      break;
    case RecordType.HardState:
      record = { type: "hard-state", hardState: r.hardState() };
      break;
    case RecordType.Entry: {
      const index = r.u64();
      const term = r.u64();
      const entryType = r.entryType();
      // Copy: the entry must not pin the whole segment buffer it was read from.
      const data = new Uint8Array(r.rest());
      return { type: "entry", entry: { index, term, type: entryType, data } };
    }
    case RecordType.Truncate:
      record = { type: "truncate", index: r.u64() };
      break;
    case RecordType.Reset:
      record = { type: "reset", index: r.u64() };
      break;
    default:
      throw new Error(`unknown record type ${type}`);
  }
  r.expectEnd();
  return record;
}

class Reader {
  constructor(
    private readonly buf: Buffer,
    private p: number,
    private readonly end: number,
  ) {}

  private need(n: number): void {
    if (this.p + n > this.end) throw new Error("record payload too short");
  }

  u8(): number {
    this.need(1);
    return this.buf[this.p++];
  }

  u64(): number {
    this.need(U64);
    const lo = this.buf.readUInt32LE(this.p);
    const hi = this.buf.readUInt32LE(this.p + 4);
    if (hi > 0x1f_ffff) throw new Error("u64 beyond 2^53");
    this.p += U64;
    return hi * 0x1_0000_0000 + lo;
  }

  hardState(): HardState {
    const term = this.u64();
    const commit = this.u64();
    this.need(2);
    const voteBytes = this.buf.readUInt16LE(this.p);
    this.p += 2;
    this.need(voteBytes);
    const vote = this.buf.toString("utf8", this.p, this.p + voteBytes);
    this.p += voteBytes;
    return { term, vote, commit };
  }

  entryType(): EntryType {
    const code = this.u8();
    if (code === 0) return "normal";
    if (code === 1) return "conf";
    throw new Error(`unknown entry type ${code}`);
  }

  rest(): Buffer {
    const out = this.buf.subarray(this.p, this.end);
    this.p = this.end;
    return out;
  }

  expectEnd(): void {
    if (this.p !== this.end) throw new Error("trailing bytes in record payload");
  }
}
