// A database node's files: the WAL (log + hard state), the snapshot store and the
// SQLite state machine, and how they are put back together after a restart.
//
//   <dir>/wal/          segments of the Raft log and hard state (storage/wal.ts)
//   <dir>/snapshots/    snapshots: the SQLite file at an index + meta.json
//   <dir>/state.db      the state machine's live database

import { copyFileSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { bootstrapState, joinerState } from "../core/bootstrap.ts";
import type { InitialState } from "../core/raft.ts";
import type { NodeId } from "../core/types.ts";
import { SqliteStateMachine } from "../db/state-machine.ts";
import { SnapshotStore } from "../storage/snapshot-store.ts";
import { Wal } from "../storage/wal.ts";
import type { WalRepair } from "../storage/wal.ts";

export interface OpenedStorage {
  wal: Wal;
  snapshots: SnapshotStore;
  stateMachine: SqliteStateMachine;
  initial: InitialState;
  repaired?: WalRepair;
}

export function openStorage(dir: string, bootstrap: { id: NodeId; address: string }[] | undefined): OpenedStorage {
  mkdirSync(dir, { recursive: true });
  const { wal, state } = Wal.open(join(dir, "wal"));
  const snapshots = SnapshotStore.open(join(dir, "snapshots"));
  const stateMachine = new SqliteStateMachine(join(dir, "state.db"));
  const latest = snapshots.latest();

  const fresh = state.lastIndex === 0 && state.hardState.term === 0 && !latest;
  if (fresh) {
    const initial = bootstrap?.length ? bootstrapState(bootstrap) : joinerState();
    if (initial.entries.length || initial.hardState.term) {
      wal.save(initial.hardState, initial.entries);
      wal.sync();
    }
    return { wal, snapshots, stateMachine, initial: { ...initial, applied: stateMachine.appliedIndex() } };
  }

  // The state machine survives restarts on its own (its applied index is stored
  // with its data); it only needs the snapshot when it is behind it, e.g. a crash
  // right after a snapshot from the leader was made durable.
  if (latest && stateMachine.appliedIndex() < latest.meta.index) stateMachine.restoreFrom(latest.dataPath);
  return {
    wal,
    snapshots,
    stateMachine,
    repaired: state.repaired,
    initial: {
      hardState: state.hardState,
      snapshot: latest?.meta ?? { index: 0, term: 0, config: { members: {} } },
      entries: state.entries,
      applied: stateMachine.appliedIndex(),
    },
  };
}

/** Copies a file into place atomically (used to hand a finished backup to the snapshot store). */
export function moveInto(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}
