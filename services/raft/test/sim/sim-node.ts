// One simulated node: a RawNode driven the way the real node drives it, over a
// MemoryDisk, with a key-value map as its state machine.

import { RawNode } from "../../src/core/raw-node.ts";
import type { InitialState, RaftOptions } from "../../src/core/raft.ts";
import type { Entry, Message, NodeId, Ready } from "../../src/core/types.ts";
import { InvariantViolation } from "./invariants.ts";
import { MemoryDisk } from "./memory-disk.ts";

export type KvCommand =
  | { op: "put"; key: string; value: string }
  | { op: "cas"; key: string; expected: string | null; value: string };

export interface KvResult {
  ok: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeKv(cmd: KvCommand): Uint8Array {
  return enc.encode(JSON.stringify(cmd));
}

/** What a node's driver reports to the simulation, which checks and routes it. */
export interface NodeHooks {
  send(from: NodeId, msgs: Message[], snapshotData: (index: number) => Uint8Array | undefined): void;
  applied(node: SimNode, entry: Entry, result: KvResult | undefined): void;
  readReady(node: SimNode, requestId: number, value: Map<string, string>): void;
  readDropped(node: SimNode, requestId: number): void;
  becameLeader(node: SimNode, term: number): void;
  persisted(node: SimNode, rd: Ready): void;
  installedSnapshot(node: SimNode, index: number): void;
}

export class SimNode {
  raw: RawNode | undefined;
  kv = new Map<string, string>();
  appliedIndex = 0;
  /** A Ready whose writes are staged and waiting for fsync to complete. */
  inFlight: Ready | undefined;
  /** Snapshot bytes received from a leader, waiting for the core to ask for their install. */
  private incoming = new Map<number, Uint8Array>();
  private pendingReads: { index: number; requestId: number }[] = [];

  constructor(
    readonly id: NodeId,
    readonly disk: MemoryDisk,
    private readonly opts: Omit<RaftOptions, "id">,
    private readonly hooks: NodeHooks,
    readonly snapshotEvery: number,
  ) {}

  get alive(): boolean {
    return this.raw !== undefined;
  }

  start(): void {
    const d = this.disk.durable;
    const initial: InitialState = {
      hardState: d.hardState,
      snapshot: d.snapshot.meta,
      entries: d.entries,
    };
    this.kv = decodeKvSnapshot(d.snapshot.data);
    this.appliedIndex = d.snapshot.meta.index;
    this.raw = new RawNode({ ...this.opts, id: this.id }, initial);
    this.inFlight = undefined;
    this.incoming.clear();
    this.pendingReads = [];
  }

  crash(keepStaged: number): void {
    this.raw = undefined;
    this.inFlight = undefined;
    this.disk.crash(keepStaged);
  }

  receive(m: Message, snapshotData: Uint8Array | undefined): void {
    if (!this.raw) return;
    if (m.type === "snapshot" && snapshotData) this.incoming.set(m.snapshot!.meta.index, snapshotData);
    this.raw.step(m);
  }

  /** Steps 1-2 of a Ready: send what needs nothing durable, stage writes. Returns whether a Ready was taken. */
  beginReady(): boolean {
    const raw = this.raw;
    if (!raw || this.inFlight || !raw.hasReady()) return false;
    const rd = raw.ready();
    if (rd.softState?.role === "leader") this.hooks.becameLeader(this, raw.raft.term);
    // Messages sent before this Ready's fsync may only speak for a term already durable:
    // a leader whose term is lost in a crash could otherwise lead the same term twice.
    for (const m of rd.messages) {
      if (m.term > this.disk.durable.hardState.term) {
        throw new InvariantViolation(`${this.id} sent ${m.type} in term ${m.term} before that term was durable (disk has ${this.disk.durable.hardState.term})`);
      }
    }
    this.hooks.send(this.id, rd.messages, (i) => this.snapshotBytes(i));
    if (rd.snapshot) {
      const data = this.incoming.get(rd.snapshot.meta.index);
      if (!data) throw new Error(`${this.id}: asked to install snapshot ${rd.snapshot.meta.index} it never received`);
      this.disk.stage({ kind: "snapshot", meta: rd.snapshot.meta, data });
    }
    if (rd.entries.length) this.disk.stage({ kind: "entries", entries: rd.entries });
    if (rd.hardState) this.disk.stage({ kind: "hard-state", hardState: rd.hardState });
    this.inFlight = rd;
    return true;
  }

  /** Steps 3-5, once the fsync completed. */
  finishReady(): void {
    const raw = this.raw;
    const rd = this.inFlight;
    if (!raw || !rd) return;
    this.disk.fsync();
    this.hooks.persisted(this, rd);
    this.hooks.send(this.id, rd.messagesAfterPersist, (i) => this.snapshotBytes(i));
    if (rd.snapshot) {
      this.kv = decodeKvSnapshot(this.incoming.get(rd.snapshot.meta.index)!);
      this.appliedIndex = rd.snapshot.meta.index;
      // A newer snapshot may have arrived while this one's fsync was pending: keep it.
      for (const index of [...this.incoming.keys()]) if (index <= this.appliedIndex) this.incoming.delete(index);
      this.hooks.installedSnapshot(this, this.appliedIndex);
    }
    for (const e of rd.committedEntries) {
      if (e.index <= this.appliedIndex) continue;
      if (e.index !== this.appliedIndex + 1) throw new Error(`${this.id}: applying ${e.index} after ${this.appliedIndex}`);
      this.appliedIndex = e.index;
      this.hooks.applied(this, e, e.type === "normal" && e.data.length ? this.applyKv(JSON.parse(dec.decode(e.data))) : undefined);
    }
    for (const rs of rd.readStates) this.pendingReads.push(rs);
    for (const id of rd.droppedReads) this.hooks.readDropped(this, id);
    this.inFlight = undefined;
    raw.advance(rd);
    this.serveReads();
    this.maybeSnapshot();
  }

  private applyKv(cmd: KvCommand): KvResult {
    if (cmd.op === "put") {
      this.kv.set(cmd.key, cmd.value);
      return { ok: true };
    }
    const current = this.kv.get(cmd.key) ?? null;
    if (current !== cmd.expected) return { ok: false };
    this.kv.set(cmd.key, cmd.value);
    return { ok: true };
  }

  private serveReads(): void {
    const ready = this.pendingReads.filter((r) => r.index <= this.appliedIndex);
    this.pendingReads = this.pendingReads.filter((r) => r.index > this.appliedIndex);
    for (const r of ready) this.hooks.readReady(this, r.requestId, this.kv);
  }

  private maybeSnapshot(): void {
    const raw = this.raw!;
    if (this.appliedIndex - raw.raft.latestSnapshot.index < this.snapshotEvery) return;
    const keep = Math.floor(this.snapshotEvery / 4);
    const meta = raw.compact(this.appliedIndex, keep);
    this.disk.saveSnapshot(meta, encodeKvSnapshot(this.kv), raw.raft.log.snapshotIndex);
  }

  private snapshotBytes(index: number): Uint8Array | undefined {
    const s = this.disk.durable.snapshot;
    return s.meta.index === index ? s.data : undefined;
  }
}

export function encodeKvSnapshot(kv: Map<string, string>): Uint8Array {
  return enc.encode(JSON.stringify([...kv].sort()));
}

export function decodeKvSnapshot(data: Uint8Array): Map<string, string> {
  if (data.length === 0) return new Map();
  return new Map(JSON.parse(dec.decode(data)) as [string, string][]);
}
