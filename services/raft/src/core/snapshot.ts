// Snapshots as the core sees them: the application holds its state at an index,
// the log before it can go; or a leader's snapshot replaces the whole log.

import { cloneConfig } from "./confchange.ts";
import type { Raft } from "./raft.ts";
import type { SnapshotMeta } from "./types.ts";

/**
 * The application holds a snapshot of its state at `index` (<= applied). Entries up
 * to `index - keepEntries` are dropped; a follower that needs older ones gets the snapshot.
 */
export function compact(r: Raft, index: number, keepEntries: number): SnapshotMeta {
  const term = r.log.term(index);
  if (term === undefined || index > r.log.applied) throw new Error(`cannot snapshot at ${index}`);
  r.latestSnapshot = { index, term, config: r.configAt(index) };
  const cut = index - keepEntries;
  const cutTerm = r.log.term(cut);
  if (cut > r.log.snapshotIndex && cutTerm !== undefined) {
    r.configurations.compact(cut);
    r.log.compact(cut, cutTerm);
  }
  return r.latestSnapshot;
}

/** Follower: replace log and configuration by a snapshot from the leader. */
export function restore(r: Raft, meta: SnapshotMeta): void {
  r.log.restore(meta);
  r.log.takeChangedFrom();
  r.configurations.reset(meta);
  r.latestSnapshot = { ...meta, config: cloneConfig(meta.config) };
  r.pendingInstall = meta;
}
