// Which configuration is in force. As in the Raft thesis (§4.1), a node uses the
// latest configuration in its log, committed or not: a change takes effect as soon
// as its entry is appended, and is undone if that entry is overwritten. (Waiting for
// the commit instead can wedge a two-voter group: a survivor that holds an entry
// removing its dead peer, but never learned it committed, could never elect itself.)

import { applyConfChange, cloneConfig, decodeConfChange } from "./confchange.ts";
import type { RaftLog } from "./raft-log.ts";
import type { Config } from "./types.ts";

interface Versioned {
  index: number;
  config: Config;
}

export class Configurations {
  /** The configuration at the log's compaction point. */
  private base: Versioned;
  /** One per conf entry in the log after `base`, in index order. */
  private changes: Versioned[] = [];

  constructor(base: Versioned) {
    this.base = { index: base.index, config: cloneConfig(base.config) };
  }

  current(): Config {
    return this.changes.length ? this.changes[this.changes.length - 1].config : this.base.config;
  }

  /** Index of the entry that set the current configuration (the base's index if none). */
  currentIndex(): number {
    return this.changes.length ? this.changes[this.changes.length - 1].index : this.base.index;
  }

  /** The configuration in force just after `index`. */
  at(index: number): Config {
    if (index < this.base.index) throw new Error(`configuration at ${index} is compacted (base ${this.base.index})`);
    let config = this.base.config;
    for (const c of this.changes) if (c.index <= index) config = c.config;
    return cloneConfig(config);
  }

  /** Entries from `from` on were (re)written: drop what they replaced, read the new ones. Returns whether the current configuration changed. */
  rewrite(from: number, log: RaftLog): boolean {
    const before = this.currentIndex();
    while (this.changes.length && this.changes[this.changes.length - 1].index >= from) this.changes.pop();
    for (let i = Math.max(from, log.firstIndex()); i <= log.lastIndex(); i++) {
      const e = log.entry(i)!;
      if (e.type !== "conf") continue;
      this.changes.push({ index: i, config: applyConfChange(this.current(), decodeConfChange(e.data)) });
    }
    return this.currentIndex() !== before;
  }

  /** The log was compacted up to `index`. */
  compact(index: number): void {
    if (index <= this.base.index) return;
    this.base = { index, config: this.at(index) };
    this.changes = this.changes.filter((c) => c.index > index);
  }

  /** The log was replaced by a snapshot. */
  reset(base: Versioned): void {
    this.base = { index: base.index, config: cloneConfig(base.config) };
    this.changes = [];
  }
}
