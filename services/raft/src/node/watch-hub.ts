// Fans out the writes that changed data to watchers, and keeps a window of recent
// ones so a watcher that reconnects can resume from the index it last saw.

import type { AppliedEvent, SqliteStateMachine } from "../db/state-machine.ts";
import { DatabaseError } from "./errors.ts";

const KEEP_EVENTS = 10_000;

/** A committed write that changed data: what a watcher needs to invalidate what it cached. */
export interface ChangeEvent {
  index: number;
  requestId: string;
  /** Tables the write changed (lower-cased). */
  tables: string[];
}

export class WatchHub {
  /**
   * Only changes, and only what watchers are told: a window of whole applied events
   * kept every statement's result (a 500-row batch held 500 objects), ~4 MB after a bulk load.
   */
  private recent: ChangeEvent[] = [];
  /** Changes below this index are not in `recent` (before we started, or dropped from the window). */
  private oldest: number;
  private listeners = new Set<(e: ChangeEvent) => void>();
  private readonly unsubscribe: () => void;

  constructor(
    sm: SqliteStateMachine,
    private readonly keep = KEEP_EVENTS,
  ) {
    this.oldest = sm.appliedIndex() + 1;
    this.unsubscribe = sm.onApplied((applied) => {
      const e = changeOf(applied);
      if (!e) return;
      this.recent.push(e);
      if (this.recent.length > this.keep * 1.5) {
        const cut = this.recent.length - this.keep;
        this.oldest = this.recent[cut - 1].index + 1;
        this.recent = this.recent.slice(cut);
      }
      for (const l of this.listeners) l(e);
    });
  }

  /** Delivers changes after `fromIndex` (exclusive), from the window, then live. */
  subscribe(fromIndex: number, listener: (e: ChangeEvent) => void): () => void {
    if (fromIndex > 0 && fromIndex + 1 < this.oldest) {
      throw new DatabaseError("out-of-range", `events after ${fromIndex} are no longer kept; the oldest kept is ${this.oldest}`);
    }
    if (fromIndex > 0) for (const e of this.recent) if (e.index > fromIndex) listener(e);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A snapshot replaced the state: earlier events are gone. */
  restored(index: number): void {
    this.recent = [];
    this.oldest = index + 1;
  }

  close(): void {
    this.unsubscribe();
    this.listeners.clear();
  }
}

/** A command that ran just now and succeeded; duplicates, failures, no-ops and conf entries change nothing. */
function changeOf(e: AppliedEvent): ChangeEvent | undefined {
  if (e.kind !== "command" || e.duplicate || !e.result.ok) return undefined;
  return { index: e.index, requestId: e.requestId ?? "", tables: e.tables };
}
