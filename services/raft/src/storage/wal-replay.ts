// Rebuilds the log and hard state from the records of consecutive segments.
// Every record is checked against what came before it (contiguous indexes,
// segment headers that continue the previous segment), so a missing or
// misordered file is reported instead of producing a log with holes.

import type { Entry, HardState } from "../core/types.ts";
import type { WalRecord } from "./wal-record.ts";

export const EMPTY_HARD_STATE: Readonly<HardState> = Object.freeze({ term: 0, vote: "", commit: 0 });

export class LogReplay {
  hardState: HardState = { ...EMPTY_HARD_STATE };
  /** Entries still live, ascending and contiguous from `firstIndex`. */
  entries: Entry[] = [];
  /** Index of entries[0], or of the next entry when there are none. */
  firstIndex = 1;
  private started = false;

  get lastIndex(): number {
    return this.firstIndex + this.entries.length - 1;
  }

  /**
   * Applies one record. `segment` is what the file name says about the segment
   * being read; `atSegmentStart` is true for its first record only.
   * Throws an Error describing the inconsistency.
   */
  apply(record: WalRecord, segment: { seq: number; firstIndex: number }, atSegmentStart: boolean): void {
    if (atSegmentStart !== (record.type === "segment-header")) {
      throw new Error(atSegmentStart ? "segment does not start with a header" : "segment header in mid-segment");
    }
    switch (record.type) {
      case "segment-header":
        if (record.seq !== segment.seq || record.firstIndex !== segment.firstIndex) {
          throw new Error(
            `header says seq ${record.seq} firstIndex ${record.firstIndex}, file name says ${segment.seq}/${segment.firstIndex}`,
          );
        }
        if (!this.started) {
          // The oldest surviving segment: earlier ones were compacted away.
          this.firstIndex = record.firstIndex;
          this.started = true;
        } else if (record.firstIndex !== this.lastIndex + 1) {
          throw new Error(`segment starts at index ${record.firstIndex}, previous segment ended at ${this.lastIndex}`);
        }
        this.hardState = record.hardState;
        return;
      case "hard-state":
        this.hardState = record.hardState;
        return;
      case "entry":
        if (record.entry.index !== this.lastIndex + 1) {
          throw new Error(`entry ${record.entry.index} does not follow last index ${this.lastIndex}`);
        }
        this.entries.push(record.entry);
        return;
      case "truncate":
        this.truncate(record.index);
        return;
      case "reset":
        this.entries = [];
        this.firstIndex = record.index + 1;
        return;
    }
  }

  private truncate(index: number): void {
    if (index > this.lastIndex + 1) {
      throw new Error(`truncation at ${index} is past last index ${this.lastIndex}`);
    }
    if (index < this.firstIndex) {
      // Only possible after the segments holding [index, firstIndex) were
      // compacted; the log now simply starts at `index`.
      this.entries = [];
      this.firstIndex = index;
      return;
    }
    this.entries.length = index - this.firstIndex;
  }
}
