// Callers waiting on the log: a proposal waits until its index is applied (then
// it committed iff the entry there has its term), a read waits until the state
// machine has applied the index its ReadIndex round returned.

import type { ApplyResult } from "../db/result.ts";

export type ProposalOutcome =
  | { committed: true; index: number; result: ApplyResult | undefined }
  | { committed: false; reason: string };

interface ProposalWaiter {
  index: number;
  term: number;
  resolve: (o: ProposalOutcome) => void;
}

export class ProposalWaiters {
  private byIndex = new Map<number, ProposalWaiter[]>();

  wait(index: number, term: number): Promise<ProposalOutcome> {
    return new Promise((resolve) => {
      const list = this.byIndex.get(index) ?? [];
      list.push({ index, term, resolve });
      this.byIndex.set(index, list);
    });
  }

  /** The entry at `index` was applied; it had `term`. */
  applied(index: number, term: number, result: ApplyResult | undefined): void {
    const list = this.byIndex.get(index);
    if (!list) return;
    this.byIndex.delete(index);
    for (const w of list) {
      // (index, term) names exactly one entry: another term here means ours was
      // overwritten and can never commit.
      if (w.term === term) w.resolve({ committed: true, index, result });
      else w.resolve({ committed: false, reason: `entry ${index} was replaced after a leader change` });
    }
  }

  /** A snapshot jumped past these indexes: their fate is no longer visible here. */
  skippedTo(index: number): void {
    for (const [i, list] of this.byIndex) {
      if (i > index) continue;
      this.byIndex.delete(i);
      for (const w of list) w.resolve({ committed: false, reason: "outcome unknown: a snapshot replaced the log" });
    }
  }

  failAll(reason: string): void {
    for (const list of this.byIndex.values()) for (const w of list) w.resolve({ committed: false, reason });
    this.byIndex.clear();
  }

  get size(): number {
    return this.byIndex.size;
  }
}

interface ReadWaiter {
  resolve: (index: number) => void;
  reject: (e: Error) => void;
  /** Set once the ReadIndex round returned; the read waits for apply to reach it. */
  index?: number;
}

export class ReadWaiters {
  private nextId = 1;
  private waiting = new Map<number, ReadWaiter>();

  /** Registers a read; returns its id for RawNode.readIndex and the promise of the index to read at. */
  start(): { id: number; done: Promise<number> } {
    const id = this.nextId++;
    const done = new Promise<number>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    return { id, done };
  }

  confirmed(id: number, index: number, applied: number): void {
    const w = this.waiting.get(id);
    if (!w) return;
    w.index = index;
    this.releaseUpTo(applied);
  }

  refused(id: number, why: Error): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    w.reject(why);
  }

  releaseUpTo(applied: number): void {
    for (const [id, w] of this.waiting) {
      if (w.index !== undefined && w.index <= applied) {
        this.waiting.delete(id);
        w.resolve(w.index);
      }
    }
  }

  /** Reads still waiting for a leader's confirmation: the leader they asked is gone. */
  failUnconfirmed(why: Error): void {
    for (const [id, w] of this.waiting) {
      if (w.index !== undefined) continue;
      this.waiting.delete(id);
      w.reject(why);
    }
  }

  failAll(why: Error): void {
    for (const w of this.waiting.values()) w.reject(why);
    this.waiting.clear();
  }
}
