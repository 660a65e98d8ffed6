// One outbound peer: a gRPC client and a long-lived Send stream fed from a
// bounded queue. Raft tolerates loss, so when the queue is full or the peer is
// down we drop and count instead of blocking the node.
import * as grpc from "@grpc/grpc-js";
import type { NodeId } from "../core/types.ts";
import * as pb from "../../../../proto/gen/raft.ts";
import { encodeMessageBatch } from "./batch-encoder.ts";
import { CLIENT_CHANNEL_OPTIONS } from "./credentials.ts";

export interface PeerClientOptions {
  /** Messages queued before new ones are dropped. */
  maxQueue: number;
  /** Called once each time the stream to the peer fails. */
  onUnreachable: (id: NodeId) => void;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export interface PeerStats {
  address: string;
  /** Messages waiting to be written. */
  queued: number;
  /** Messages dropped: queue full, peer down, or stream failure. */
  dropped: number;
  /** Messages written to the stream. */
  sent: number;
  /** A Send stream is open (it may still be connecting). */
  streaming: boolean;
}

/** Batches stay well under the receiver's 64 MiB message limit. */
const MAX_BATCH_MESSAGES = 256;
const MAX_BATCH_BYTES = 8 << 20;

/** The generated client, but batches are encoded in one allocation (see batch-encoder.ts). */
const RaftTransportClient = grpc.makeGenericClientConstructor(
  { ...pb.RaftTransportService, send: { ...pb.RaftTransportService.send, requestSerialize: encodeMessageBatch } },
  "shoal.raft.RaftTransport",
) as unknown as typeof pb.RaftTransportClient;

export class PeerClient {
  readonly client: pb.RaftTransportClient;
  private stream: grpc.ClientWritableStream<pb.MessageBatch> | undefined;
  private streamDone: (() => void) | undefined;
  private streamStarted = 0;
  private queue: pb.Message[] = [];
  private waitingDrain = false;
  private flushScheduled = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private closed = false;
  private dropped = 0;
  private sent = 0;

  constructor(
    readonly id: NodeId,
    readonly address: string,
    credentials: grpc.ChannelCredentials,
    private readonly opts: PeerClientOptions,
  ) {
    this.client = new RaftTransportClient(address, credentials, CLIENT_CHANNEL_OPTIONS);
    this.backoffMs = opts.backoffInitialMs;
    this.connect();
  }

  /** Queues a message; false when it was dropped. Never blocks. */
  enqueue(m: pb.Message): boolean {
    if (this.closed || !this.stream || this.queue.length >= this.opts.maxQueue) {
      this.dropped++;
      return false;
    }
    this.queue.push(m);
    if (!this.flushScheduled && !this.waitingDrain) {
      this.flushScheduled = true;
      // Coalesce everything sent in this tick into few batches.
      setImmediate(() => this.flush());
    }
    return true;
  }

  stats(): PeerStats {
    return {
      address: this.address,
      queued: this.queue.length,
      dropped: this.dropped,
      sent: this.sent,
      streaming: this.stream !== undefined,
    };
  }

  /** Ends the stream (flushing what the socket accepts), waits up to `graceMs`, then cancels. */
  async close(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const stream = this.stream;
    if (stream) {
      this.flush();
      this.dropped += this.queue.length;
      this.queue = [];
      const ended = new Promise<void>((resolve) => (this.streamDone = resolve));
      stream.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      stream.cancel();
    }
    this.client.close();
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.closed) return;
    const stream = this.client.send(() => this.onStreamDone(stream));
    stream.on("error", () => {}); // the callback reports failures
    this.stream = stream;
    this.streamStarted = Date.now();
  }

  private flush(): void {
    this.flushScheduled = false;
    const stream = this.stream;
    if (!stream || this.waitingDrain) return;
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      this.sent += batch.length;
      if (!stream.write({ messages: batch })) {
        this.waitingDrain = true;
        stream.once("drain", () => {
          this.waitingDrain = false;
          if (this.stream === stream) this.flush();
        });
        return;
      }
    }
  }

  private takeBatch(): pb.Message[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && n < MAX_BATCH_MESSAGES) {
      bytes += approxSize(this.queue[n]);
      if (n > 0 && bytes > MAX_BATCH_BYTES) break;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private onStreamDone(stream: grpc.ClientWritableStream<pb.MessageBatch>): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.waitingDrain = false;
    this.dropped += this.queue.length;
    this.queue = [];
    if (this.closed) {
      this.streamDone?.();
      return;
    }
    // The receiver ends streams only when it shuts down; any end means the peer is gone for now.
    this.opts.onUnreachable(this.id);
    // A stream that lived a while was healthy: start backing off from scratch.
    if (Date.now() - this.streamStarted > this.opts.backoffMaxMs) this.backoffMs = this.opts.backoffInitialMs;
    const delay = this.backoffMs * (0.5 + Math.random() * 0.5);
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.backoffMaxMs);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}

function approxSize(m: pb.Message): number {
  let n = 64;
  for (const e of m.entries) n += e.data.length + 16;
  if (m.snapshot) n += m.snapshot.data.length;
  return n;
}
