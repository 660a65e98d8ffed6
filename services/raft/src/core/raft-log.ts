// The core's view of the log: the entries after the last snapshot, held in memory.
// Durable storage lives in the adapters; the core only tracks how far the log is
// durable (`stable`), known committed (`committed`) and handed out for applying
// (`applied`). Snapshots bound how much of the log is kept in memory.

import type { Entry, SnapshotMeta } from "./types.ts";

export class RaftLog {
  /** Index and term of the last entry covered by the snapshot (0/0 for none). */
  snapshotIndex: number;
  snapshotTerm: number;
  /** entries[i] has index snapshotIndex + 1 + i. */
  private entries: Entry[];
  /** Highest index known to be durable on this node's disk. */
  stable: number;
  committed: number;
  /** Highest index handed to the application for applying. */
  applied: number;
  /** The lowest index (re)written since the last takeChangedFrom(); Infinity for none. */
  private changedFrom = Infinity;

  constructor(snapshot: Pick<SnapshotMeta, "index" | "term">, entries: Entry[], committed: number) {
    this.snapshotIndex = snapshot.index;
    this.snapshotTerm = snapshot.term;
    this.entries = entries.filter((e) => e.index > snapshot.index);
    for (let i = 0; i < this.entries.length; i++) {
      if (this.entries[i].index !== snapshot.index + 1 + i) {
        throw new Error(`log gap: expected index ${snapshot.index + 1 + i}, found ${this.entries[i].index}`);
      }
    }
    this.stable = this.lastIndex();
    this.committed = Math.max(snapshot.index, Math.min(committed, this.lastIndex()));
    this.applied = snapshot.index;
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.entries.length ? this.entries[this.entries.length - 1].term : this.snapshotTerm;
  }

  /** The term of the entry at `index`, or undefined when it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIndex - 1].term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIndex - 1];
  }

  /** Entries in [lo, hi] (inclusive), at most `maxCount` of them and about `maxBytes`. */
  slice(lo: number, hi: number, maxCount = Infinity, maxBytes = Infinity): Entry[] {
    if (lo <= this.snapshotIndex) throw new Error(`slice from ${lo}: compacted up to ${this.snapshotIndex}`);
    hi = Math.min(hi, this.lastIndex(), lo + maxCount - 1);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= hi; i++) {
      const e = this.entries[i - this.snapshotIndex - 1];
      bytes += e.data.length + 24;
      // Always send at least one entry, even a large one, or replication stalls.
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Entries not yet durable: what the next Ready asks the driver to persist. */
  unstableEntries(): Entry[] {
    return this.stable >= this.lastIndex() ? [] : this.slice(this.stable + 1, this.lastIndex());
  }

  /** Committed entries not yet handed out, at most `maxCount`. */
  nextCommittedEntries(maxCount: number): Entry[] {
    const hi = Math.min(this.committed, this.lastIndex());
    return this.applied >= hi ? [] : this.slice(this.applied + 1, hi, maxCount);
  }

  /** Whether the candidate's log (last term/index) is at least as up to date as ours (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Appends entries received from a leader whose predecessor matched. Entries that are
   * already present with the same term are skipped; the first conflicting one truncates
   * our suffix (never below `committed`, which Raft guarantees cannot conflict).
   * Returns the index of the last new entry.
   */
  appendFromLeader(entries: Entry[]): number {
    for (const e of entries) {
      const existing = this.term(e.index);
      if (existing === e.term) continue;
      if (existing === undefined && e.index <= this.snapshotIndex) continue;
      if (e.index <= this.committed) {
        throw new Error(`conflict at committed index ${e.index} (committed ${this.committed})`);
      }
      this.truncateAndAppend(entries.slice(entries.indexOf(e)));
      break;
    }
    return entries.length ? entries[entries.length - 1].index : 0;
  }

  /** Appends entries that continue or overwrite the log from entries[0].index. */
  truncateAndAppend(entries: Entry[]): void {
    if (entries.length === 0) return;
    const from = entries[0].index;
    if (from > this.lastIndex() + 1) throw new Error(`append at ${from} leaves a gap after ${this.lastIndex()}`);
    if (from <= this.snapshotIndex) throw new Error(`append at ${from} is inside the snapshot`);
    this.entries.length = from - this.snapshotIndex - 1;
    for (const e of entries) this.entries.push(e);
    this.changedFrom = Math.min(this.changedFrom, from);
    // Anything from `from` on must be written (again) before it counts as durable.
    this.stable = Math.min(this.stable, from - 1);
  }

  /** Where the log changed since the last call (Infinity if it did not), for whoever tracks its contents. */
  takeChangedFrom(): number {
    const from = this.changedFrom;
    this.changedFrom = Infinity;
    return from;
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    if (index > this.lastIndex()) throw new Error(`commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
    return true;
  }

  /**
   * The largest index <= `index` whose term is <= `term`: where a leader's and a
   * follower's logs may agree, used to skip a whole conflicting term per round trip.
   */
  findConflictByTerm(index: number, term: number): number {
    index = Math.min(index, this.lastIndex());
    for (; index > this.snapshotIndex; index--) {
      if (this.entries[index - this.snapshotIndex - 1].term <= term) return index;
    }
    return index;
  }

  /** Replaces the whole log by a snapshot (a follower installing one from its leader). */
  restore(meta: Pick<SnapshotMeta, "index" | "term">): void {
    this.snapshotIndex = meta.index;
    this.snapshotTerm = meta.term;
    this.entries = [];
    this.stable = meta.index;
    this.committed = meta.index;
    this.applied = meta.index;
  }

  /** Drops entries up to `index` (inclusive), now covered by a snapshot the application holds. */
  compact(index: number, term: number): void {
    if (index <= this.snapshotIndex) return;
    if (index > this.applied) throw new Error(`compact ${index} beyond applied ${this.applied}`);
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }
}
