// Shared fixtures for the WAL tests.
import { readFileSync, readdirSync } from "node:fs";
import type { Entry, EntryType } from "../../src/core/types.ts";
import { scanFrames } from "../../src/storage/wal-frame.ts";

export function entry(index: number, term: number, data = `cmd-${index}`, type: EntryType = "normal"): Entry {
  return { index, term, type, data: new Uint8Array(Buffer.from(data)) };
}

export function entries(from: number, to: number, term: number, dataBytes?: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push(dataBytes === undefined ? entry(i, term) : { ...entry(i, term), data: new Uint8Array(dataBytes).fill(i & 0xff) });
  }
  return out;
}

export function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith("wal-") && n.endsWith(".log"))
    .sort();
}

/** [start, end) of every intact record in a segment file. */
export function recordBounds(path: string): { start: number; end: number }[] {
  const bounds: { start: number; end: number }[] = [];
  scanFrames(readFileSync(path), (start, _payloadStart, end) => bounds.push({ start, end }));
  return bounds;
}
