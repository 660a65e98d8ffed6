// Receiving side of snapshot streaming: one open sink per sender, kept across
// interrupted streams so that the sender can resume at the offset we hold.
import * as grpc from "@grpc/grpc-js";
import { emptyMessage, type Message, type NodeId, type SnapshotMeta } from "../core/types.ts";
import type * as pb from "../../../../proto/gen/raft.ts";
import { DecodeError, snapshotMetaFromProto } from "./codec.ts";
import type { SnapshotReceiver, SnapshotSink } from "./snapshot.ts";
import { statusError } from "./status.ts";

/** One snapshot being received; writes are serialized through `chain`. */
class Incoming {
  offset: number;
  /** The stream currently allowed to write (a resumed stream takes over). */
  owner: object | undefined;
  aborted = false;
  failed = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly index: number,
    readonly term: number,
    readonly totalSize: number,
    private readonly sink: SnapshotSink,
  ) {
    this.offset = Math.max(0, Math.min(sink.offset, totalSize));
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    const run = this.chain.then(() => this.writeNow(offset, data));
    this.chain = run.then(noop, noop);
    return run;
  }

  /** Resolves once every write queued so far has settled. */
  settled(): Promise<void> {
    return this.chain;
  }

  private async writeNow(offset: number, data: Uint8Array): Promise<void> {
    if (this.aborted) throw statusError(grpc.status.ABORTED, "snapshot transfer aborted");
    if (offset > this.offset) {
      throw statusError(grpc.status.FAILED_PRECONDITION, `snapshot gap: chunk at ${offset}, holding ${this.offset}`);
    }
    // A resumed sender may start before our end (it asked before our last write landed).
    const skip = this.offset - offset;
    const part = new Uint8Array(data.buffer, data.byteOffset + skip, Math.max(0, data.byteLength - skip));
    if (part.length === 0) return;
    if (this.offset + part.length > this.totalSize) {
      throw statusError(grpc.status.INVALID_ARGUMENT, "snapshot chunk beyond total size");
    }
    try {
      await this.sink.write(this.offset, part);
    } catch (err) {
      this.failed = true;
      throw statusError(grpc.status.INTERNAL, `snapshot write: ${(err as Error).message}`);
    }
    this.offset += part.length;
  }

  async finish(): Promise<void> {
    await this.settled();
    await this.sink.finish();
  }

  async abort(): Promise<void> {
    this.aborted = true;
    await this.settled();
    await this.sink.abort();
  }
}

function noop(): void {}

interface Slot {
  index: number;
  term: number;
  totalSize: number;
  ready: Promise<Incoming>;
}

export class SnapshotInbox {
  private readonly slots = new Map<NodeId, Slot>();
  private closed = false;

  constructor(
    private readonly nodeId: NodeId,
    private readonly receiver: SnapshotReceiver | undefined,
    /** Hands the finished snapshot's Message to the node. */
    private readonly deliver: (m: Message) => void,
  ) {}

  /** SnapshotOffset: how many bytes of this snapshot we hold (opening a sink if needed). */
  async offset(req: pb.SnapshotOffsetRequest): Promise<number> {
    this.checkTarget(req.to);
    const incoming = await this.open(req.from, decodeMeta(req.meta), req.totalSize);
    await incoming.settled();
    return incoming.offset;
  }

  /** InstallSnapshot: consumes one stream; resolves with the bytes held once complete. */
  async install(chunks: AsyncIterable<pb.SnapshotChunk>): Promise<number> {
    const token = {};
    let incoming: Incoming | undefined;
    let first: { from: NodeId; term: number; meta: SnapshotMeta } | undefined;
    try {
      for await (const chunk of chunks) {
        if (!first) {
          this.checkTarget(chunk.to);
          first = { from: chunk.from, term: chunk.term, meta: decodeMeta(chunk.meta) };
          incoming = await this.open(chunk.from, first.meta, chunk.totalSize);
          incoming.owner = token;
        }
        if (incoming!.owner !== token) throw statusError(grpc.status.ABORTED, "superseded by a newer stream");
        await incoming!.write(chunk.offset, chunk.data);
      }
    } catch (err) {
      // Interrupted: keep the sink for a resume, unless it can no longer be written.
      if (incoming?.failed && first) await this.drop(first.from, incoming);
      throw err;
    }
    if (!incoming || !first) throw statusError(grpc.status.INVALID_ARGUMENT, "empty snapshot stream");
    if (incoming.owner !== token) throw statusError(grpc.status.ABORTED, "superseded by a newer stream");
    if (incoming.offset < incoming.totalSize) {
      throw statusError(
        grpc.status.FAILED_PRECONDITION,
        `snapshot incomplete: holding ${incoming.offset} of ${incoming.totalSize}`,
      );
    }
    this.forget(first.from, incoming);
    try {
      await incoming.finish();
    } catch (err) {
      await incoming.abort().catch(noop);
      throw statusError(grpc.status.INTERNAL, `snapshot finish: ${(err as Error).message}`);
    }
    const m = emptyMessage("snapshot", first.from, this.nodeId, first.term);
    m.snapshot = { meta: first.meta, data: new Uint8Array(0) };
    this.deliver(m);
    return incoming.totalSize;
  }

  /** Aborts every unfinished snapshot. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = [...this.slots.values()];
    this.slots.clear();
    await Promise.allSettled(slots.map(async (s) => (await s.ready).abort()));
  }

  private checkTarget(to: NodeId): void {
    if (to !== this.nodeId) {
      throw statusError(grpc.status.FAILED_PRECONDITION, `snapshot for ${to} reached ${this.nodeId}`);
    }
  }

  /** The sender's open snapshot if it is this one; else aborts the older one and begins anew. */
  private open(from: NodeId, meta: SnapshotMeta, totalSize: number): Promise<Incoming> {
    if (this.closed) return Promise.reject(statusError(grpc.status.UNAVAILABLE, "transport closing"));
    const cur = this.slots.get(from);
    if (cur && cur.index === meta.index && cur.term === meta.term && cur.totalSize === totalSize) return cur.ready;
    if (cur) {
      this.slots.delete(from);
      void cur.ready.then((i) => i.abort()).catch(noop);
    }
    const receiver = this.receiver;
    if (!receiver) return Promise.reject(statusError(grpc.status.UNIMPLEMENTED, "no snapshot receiver"));
    const ready = (async () => new Incoming(meta.index, meta.term, totalSize, await receiver.begin(meta, from)))();
    const slot: Slot = { index: meta.index, term: meta.term, totalSize, ready };
    this.slots.set(from, slot);
    ready.catch(() => {
      if (this.slots.get(from) === slot) this.slots.delete(from);
    });
    return ready;
  }

  private forget(from: NodeId, incoming: Incoming): void {
    const slot = this.slots.get(from);
    if (slot && slot.index === incoming.index && slot.term === incoming.term) this.slots.delete(from);
  }

  private async drop(from: NodeId, incoming: Incoming): Promise<void> {
    this.forget(from, incoming);
    await incoming.abort().catch(noop);
  }
}

function decodeMeta(meta: pb.SnapshotMeta | undefined): SnapshotMeta {
  try {
    return snapshotMetaFromProto(meta);
  } catch (err) {
    if (err instanceof DecodeError) throw statusError(grpc.status.INVALID_ARGUMENT, err.message);
    throw err;
  }
}
