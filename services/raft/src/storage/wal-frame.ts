// Framing of WAL records: [length u32 LE][crc32c u32 LE][payload]. The
// checksum covers the length field too, so a flipped length bit is caught
// instead of sending the scan to a wrong offset. A zero length never frames a
// real record (every payload has at least its type byte), which is how the scan
// recognises the zero-filled, preallocated tail of a segment.

import { crc32c } from "./crc32.ts";

export const FRAME_HEADER_BYTES = 8;

/** Writes the length and checksum for a payload already placed at buf[off + 8 ...]. */
export function sealFrame(buf: Buffer, off: number, payloadBytes: number): number {
  buf.writeUInt32LE(payloadBytes, off);
  const payloadStart = off + FRAME_HEADER_BYTES;
  const crc = crc32c(buf, payloadStart, payloadStart + payloadBytes, crc32c(buf, off, off + 4));
  buf.writeUInt32LE(crc, off + 4);
  return payloadStart + payloadBytes;
}

/** Where and why a scan stopped before the end of the data. */
export interface FrameFault {
  offset: number;
  reason: string;
}

export interface FrameScan {
  /** Offset just past the last intact record: where the next append goes. */
  end: number;
  /** Present when bytes after `end` are neither absent nor zero fill. */
  fault?: FrameFault;
}

/**
 * Walks the intact records of a segment, calling `visit(offset, payloadStart,
 * payloadEnd)` for each, and stops at the first sign of a torn or corrupt tail.
 * Zero fill from `end` to the end of the buffer is a clean end, not a fault.
 */
export function scanFrames(
  buf: Buffer,
  visit: (offset: number, payloadStart: number, payloadEnd: number) => void,
): FrameScan {
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < FRAME_HEADER_BYTES) {
      return endOrFault(buf, off, "short frame header");
    }
    const len = buf.readUInt32LE(off);
    if (len === 0) return endOrFault(buf, off, "non-zero bytes after a zero-length frame");
    const payloadStart = off + FRAME_HEADER_BYTES;
    if (len > buf.length - payloadStart) {
      return { end: off, fault: { offset: off, reason: `record of ${len} bytes runs past the end of the file` } };
    }
    const crc = crc32c(buf, payloadStart, payloadStart + len, crc32c(buf, off, off + 4));
    if (crc !== buf.readUInt32LE(off + 4)) {
      return { end: off, fault: { offset: off, reason: "checksum mismatch" } };
    }
    visit(off, payloadStart, payloadStart + len);
    off = payloadStart + len;
  }
  return { end: off };
}

function endOrFault(buf: Buffer, off: number, reason: string): FrameScan {
  for (let i = off; i < buf.length; i++) {
    if (buf[i] !== 0) return { end: off, fault: { offset: off, reason } };
  }
  return { end: off };
}
