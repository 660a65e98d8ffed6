// A database node's snapshots: taken in the background from SQLite's online backup
// once enough entries (or bytes) were applied, streamed to followers that fell
// behind the compacted log, and received and installed from a leader.

import { join } from "node:path";
import type { RawNode } from "../core/raw-node.ts";
import type { Entry, Message, NodeId, SnapshotMeta } from "../core/types.ts";
import type { SqliteStateMachine } from "../db/state-machine.ts";
import type { SnapshotStore } from "../storage/snapshot-store.ts";
import type { Wal } from "../storage/wal.ts";
import type { PeerTransport } from "../transport/peer-transport.ts";
import type { SnapshotSink } from "../transport/snapshot.ts";
import { moveInto } from "./node-storage.ts";

export interface SnapshotLimits {
  snapshotEvery: number;
  snapshotBytes: number;
  keepEntries: number;
  keepBytes: number;
}

export interface SnapshotHost {
  id: NodeId;
  dir: string;
  raw: RawNode;
  stateMachine: SqliteStateMachine;
  store: SnapshotStore;
  wal: Wal;
  transport: PeerTransport;
  limits: SnapshotLimits;
  closed: () => boolean;
  /** Ask the node to process a Ready (after reporting a transfer's outcome to the core). */
  schedule: () => void;
}

export class SnapshotKeeper {
  private taking = false;
  /** Bytes of entries applied since the last snapshot was started. */
  private bytesSinceSnapshot = 0;

  constructor(private readonly host: SnapshotHost) {}

  applied(entries: Entry[]): void {
    for (const e of entries) this.bytesSinceSnapshot += e.data.length;
  }

  /** Takes a snapshot in the background once enough was applied since the last. */
  maybeTake(): void {
    const { raw, limits } = this.host;
    if (this.taking || this.host.closed()) return;
    const entries = raw.raft.log.applied - raw.raft.latestSnapshot.index;
    if (entries < limits.snapshotEvery && this.bytesSinceSnapshot < limits.snapshotBytes) return;
    this.taking = true;
    this.bytesSinceSnapshot = 0;
    void this.take().finally(() => {
      this.taking = false;
    });
  }

  private async take(): Promise<void> {
    const { raw, stateMachine, store, wal } = this.host;
    const tmp = join(this.host.dir, `snapshot-${process.pid}.tmp`);
    try {
      const { index, term } = await stateMachine.snapshotTo(tmp);
      if (this.host.closed()) return;
      await store.save({ index, term, config: raw.raft.configAt(index) }, (path) => moveInto(tmp, path));
      if (this.host.closed()) return;
      raw.compact(index, this.entriesToKeep(index));
      wal.compact(raw.raft.log.snapshotIndex);
    } catch (e) {
      if (!this.host.closed()) console.warn(`${this.host.id}: snapshot failed: ${(e as Error).message}`);
    }
  }

  /** How many entries before `index` to keep: at most keepEntries, and about keepBytes. */
  private entriesToKeep(index: number): number {
    const log = this.host.raw.raft.log;
    const { keepEntries, keepBytes } = this.host.limits;
    let keep = 0;
    let bytes = 0;
    while (keep < keepEntries) {
      const e = log.entry(index - keep);
      if (!e || bytes + e.data.length > keepBytes) break;
      bytes += e.data.length;
      keep++;
    }
    return keep;
  }

  /** Streams the snapshot a `snapshot` message names to its follower, then tells the core how it went. */
  async send(m: Message): Promise<void> {
    const { raw, store, transport } = this.host;
    const meta = m.snapshot!.meta;
    let ok = false;
    try {
      const source = store.openForSend(meta);
      try {
        await transport.sendSnapshot(m, { size: source.size, read: async (offset, length) => source.read(offset, length) });
        ok = true;
      } finally {
        source.close();
      }
    } catch (e) {
      if (!this.host.closed()) console.warn(`${this.host.id}: snapshot ${meta.index} to ${m.to} failed: ${(e as Error).message}`);
    }
    if (this.host.closed()) return;
    raw.reportSnapshot(m.to, ok);
    this.host.schedule();
  }

  /** Where the transport writes a snapshot arriving from `from`. */
  receive(meta: SnapshotMeta, from: NodeId): SnapshotSink {
    const receiver = this.host.store.beginReceive(meta, { streamId: from });
    return {
      offset: receiver.offset,
      write: async (offset, chunk) => {
        const r = receiver.write(offset, chunk);
        if (!r.accepted) throw new Error(`snapshot chunk at ${offset} refused; expected ${r.offset}`);
      },
      finish: async () => {
        receiver.finish();
      },
      abort: async () => receiver.abort(),
    };
  }

  /** The core asks to install a received snapshot: the state machine becomes it. */
  install(index: number, term: number): void {
    const stored = this.host.store.list().find((s) => s.meta.index === index && s.meta.term === term);
    if (!stored) throw new Error(`asked to install snapshot ${index}/${term}, which was never received`);
    this.host.stateMachine.restoreFrom(stored.dataPath);
  }
}
