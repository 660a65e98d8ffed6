// Fans out the state machine's applied events to watchers, and keeps a window of
// recent events so a watcher that reconnects can resume from the index it last saw.

import type { AppliedEvent, SqliteStateMachine } from "../db/state-machine.ts";
import { DatabaseError } from "./errors.ts";

const KEEP_EVENTS = 10_000;

export class WatchHub {
  private recent: AppliedEvent[] = [];
  /** Events below this index are not in `recent` (before we started, or dropped from the window). */
  private oldest: number;
  private listeners = new Set<(e: AppliedEvent) => void>();
  private readonly unsubscribe: () => void;

  constructor(sm: SqliteStateMachine) {
    this.oldest = sm.appliedIndex() + 1;
    this.unsubscribe = sm.onApplied((e) => {
      this.recent.push(e);
      if (this.recent.length > KEEP_EVENTS * 1.5) {
        this.recent = this.recent.slice(-KEEP_EVENTS);
        this.oldest = this.recent[0].index;
      }
      for (const l of this.listeners) l(e);
    });
  }

  /** Delivers events after `fromIndex` (exclusive), from the window, then live. */
  subscribe(fromIndex: number, listener: (e: AppliedEvent) => void): () => void {
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
