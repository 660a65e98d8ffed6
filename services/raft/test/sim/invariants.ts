// The safety properties of Raft (Figure 3 of the paper), checked while a
// simulation runs. A violation throws, and the simulation prints its trace.

import type { RaftLog } from "../../src/core/raft-log.ts";
import type { Entry, NodeId } from "../../src/core/types.ts";

export class InvariantViolation extends Error {}

function entryKey(e: Entry): string {
  return `${e.term}:${e.type}:${Buffer.from(e.data).toString("base64")}`;
}

export class Invariants {
  /** Election Safety: at most one leader per term. */
  private leaders = new Map<number, NodeId>();
  /** State Machine Safety: what was applied at each index, anywhere. */
  private applied = new Map<number, { key: string; term: number; by: NodeId }>();
  /** The state machine's content after each index, anywhere. */
  private states = new Map<number, string>();
  /** Leader Append-Only: per node, the term it led and the last index it appended then. */
  private leading = new Map<NodeId, { term: number; last: number }>();
  maxCommitted = 0;
  /** Every (index, term) ever written to any log, and the entry it named. */
  private written = new Map<string, string>();

  becameLeader(id: NodeId, term: number, log: RaftLog): void {
    const other = this.leaders.get(term);
    if (other !== undefined) {
      // A second leadership of the same term, even by the same node (after a crash
      // that lost its vote), would let two different entries share an (index, term).
      throw new InvariantViolation(`election safety: ${other} and ${id} both became leader of term ${term}`);
    }
    this.leaders.set(term, id);
    // Leader Completeness: the new leader holds every committed entry.
    for (const [index, a] of this.applied) {
      if (index <= log.snapshotIndex) continue;
      const t = log.term(index);
      if (t !== a.term) {
        throw new InvariantViolation(
          `leader completeness: ${id} leads term ${term} but has term ${t} at committed index ${index} (applied by ${a.by} with term ${a.term})`,
        );
      }
    }
    this.leading.set(id, { term, last: log.stable });
  }

  /** A leader persisted entries: it must only ever append, never overwrite. */
  leaderAppended(id: NodeId, term: number, entries: Entry[]): void {
    const l = this.leading.get(id);
    if (!l || l.term !== term || entries.length === 0) return;
    if (entries[0].index <= l.last) {
      throw new InvariantViolation(`leader append-only: ${id} (term ${term}) rewrote index ${entries[0].index} <= ${l.last}`);
    }
    l.last = entries[entries.length - 1].index;
  }

  /**
   * Log Matching, checked on every write: an (index, term) pair names exactly one
   * entry across all logs. (The prefix half follows by induction from the append
   * consistency check, and checkLogMatching verifies it across logs periodically.)
   */
  wroteEntries(id: NodeId, entries: Entry[]): void {
    for (const e of entries) {
      const at = `${e.index}:${e.term}`;
      const key = entryKey(e);
      const prior = this.written.get(at);
      if (prior === undefined) this.written.set(at, key);
      else if (prior !== key) throw new InvariantViolation(`log matching: ${id} wrote a different entry at index ${e.index} term ${e.term}`);
    }
  }

  appliedEntry(id: NodeId, e: Entry, state: string): void {
    const key = entryKey(e);
    const prior = this.applied.get(e.index);
    if (prior && prior.key !== key) {
      throw new InvariantViolation(
        `state machine safety: ${id} applied ${key.slice(0, 60)} at ${e.index}, ${prior.by} applied ${prior.key.slice(0, 60)}`,
      );
    }
    if (!prior) this.applied.set(e.index, { key, term: e.term, by: id });
    this.recordState(id, e.index, state);
    this.maxCommitted = Math.max(this.maxCommitted, e.index);
  }

  /** A node's whole state at `index` (after applying or installing a snapshot) must match everyone's. */
  recordState(id: NodeId, index: number, state: string): void {
    const prior = this.states.get(index);
    if (prior !== undefined && prior !== state) {
      throw new InvariantViolation(`state machine safety: ${id} has state ${state} at ${index}, another node had ${prior}`);
    }
    this.states.set(index, state);
  }

  /** Log Matching: where two logs hold an entry with the same index and term, they agree up to it. */
  static checkLogMatching(a: { id: NodeId; log: RaftLog }, b: { id: NodeId; log: RaftLog }): void {
    const lo = Math.max(a.log.firstIndex(), b.log.firstIndex());
    let hi = Math.min(a.log.lastIndex(), b.log.lastIndex());
    while (hi >= lo && a.log.term(hi) !== b.log.term(hi)) hi--;
    for (let i = hi; i >= lo; i--) {
      const ea = a.log.entry(i)!;
      const eb = b.log.entry(i)!;
      if (entryKey(ea) !== entryKey(eb)) {
        throw new InvariantViolation(
          `log matching: ${a.id} and ${b.id} agree at ${hi} but differ at ${i} (${ea.term} vs ${eb.term})`,
        );
      }
    }
  }
}
