// A simulated disk: writes are staged in order and become durable only at fsync.
// A crash keeps a random prefix of the staged writes, as a sequential log file
// whose tail was partly flushed (and whose torn record is truncated on open) would.

import type { Entry, HardState, SnapshotMeta } from "../../src/core/types.ts";

export interface DurableState {
  hardState: HardState;
  snapshot: { meta: SnapshotMeta; data: Uint8Array };
  entries: Entry[];
}

type Write =
  | { kind: "entries"; entries: Entry[] }
  | { kind: "hard-state"; hardState: HardState }
  | { kind: "snapshot"; meta: SnapshotMeta; data: Uint8Array };

export class MemoryDisk {
  durable: DurableState;
  private staged: Write[] = [];

  constructor(initial: DurableState) {
    this.durable = initial;
  }

  stage(w: Write): void {
    this.staged.push(w);
  }

  fsync(): void {
    for (const w of this.staged) this.apply(w);
    this.staged = [];
  }

  /** Power loss: `keep` of the staged writes reached the platter, in order. */
  crash(keep: number): void {
    for (const w of this.staged.slice(0, keep)) this.apply(w);
    this.staged = [];
  }

  stagedCount(): number {
    return this.staged.length;
  }

  /** A snapshot the node took itself: written to a temp file, fsynced and renamed at once. */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array, compactTo: number): void {
    this.durable.snapshot = { meta, data };
    this.durable.entries = this.durable.entries.filter((e) => e.index > compactTo);
  }

  private apply(w: Write): void {
    const d = this.durable;
    switch (w.kind) {
      case "hard-state":
        d.hardState = w.hardState;
        return;
      case "snapshot":
        d.snapshot = { meta: w.meta, data: w.data };
        d.entries = [];
        return;
      case "entries": {
        if (w.entries.length === 0) return;
        const from = w.entries[0].index;
        d.entries = d.entries.filter((e) => e.index < from).concat(w.entries);
        return;
      }
    }
  }
}
