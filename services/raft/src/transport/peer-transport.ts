// The node's network adapter: a gRPC server (mTLS, shared cluster certificate)
// receiving RaftTransport calls, and one PeerClient per peer sending them.
import * as grpc from "@grpc/grpc-js";
import type { Message, NodeId } from "../core/types.ts";
import * as pb from "../../../../proto/gen/raft.ts";
import { messageToProto } from "./codec.ts";
import { clientCredentials, SERVER_OPTIONS, serverCredentials, type TlsConfig } from "./credentials.ts";
import { PeerClient, type PeerStats } from "./peer-client.ts";
import type { SnapshotReceiver, SnapshotSource } from "./snapshot.ts";
import { SnapshotInbox } from "./snapshot-inbox.ts";
import { streamSnapshot } from "./snapshot-sender.ts";
import { InboundService } from "./transport-server.ts";

export interface PeerTransportOptions {
  nodeId: NodeId;
  /** "host:port"; port 0 picks a free one (see `address` after start()). */
  listenAddress: string;
  tls: TlsConfig;
  /** Inbound messages for this node, in the order each peer sent them. */
  onMessages: (msgs: Message[]) => void;
  /** Where incoming snapshots are written; without it InstallSnapshot is refused. */
  snapshots?: SnapshotReceiver;
  /** A peer's stream failed; the core should treat the peer as unreachable for now. */
  onUnreachable?: (id: NodeId) => void;
  /** Messages queued per peer before dropping; default 4096. */
  maxQueue?: number;
  /** Snapshot chunk size; default 1 MiB. */
  snapshotChunkSize?: number;
  /** How long close() waits for streams to finish before cutting them; default 1 s. */
  shutdownGraceMs?: number;
  /** Reconnect backoff bounds; default 50 ms .. 2 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

/** Decides whether a message passes (tests: simulate partitions). Applied to outbound and inbound. */
export type MessageFilter = (m: Message) => boolean;

export interface TransportStats {
  peers: Record<NodeId, PeerStats>;
  /** Outbound messages for a node with no known address. */
  unknownDestination: number;
  /** Messages dropped by the filter. */
  filtered: number;
  /** Inbound messages that were undecodable or addressed to another node. */
  rejected: number;
}

export class PeerTransport {
  /**
   * The gRPC server, serving RaftTransport. Other services (the Database service)
   * may be added to it, before or after start(); they share its mTLS credentials.
   */
  readonly server: grpc.Server;
  readonly nodeId: NodeId;
  private readonly opts: PeerTransportOptions;
  private readonly clientCreds: grpc.ChannelCredentials;
  private readonly inbox: SnapshotInbox;
  private readonly inbound: InboundService;
  private readonly peers = new Map<NodeId, PeerClient>();
  private readonly snapshotAborts = new Set<AbortController>();
  private filter: MessageFilter | undefined;
  private boundAddress: string | undefined;
  private unknownDestination = 0;
  private filtered = 0;
  private closing: Promise<void> | undefined;

  constructor(opts: PeerTransportOptions) {
    this.opts = opts;
    this.nodeId = opts.nodeId;
    this.clientCreds = clientCredentials(opts.tls);
    this.inbox = new SnapshotInbox(opts.nodeId, opts.snapshots, (m) => this.deliver([m]));
    this.inbound = new InboundService({ nodeId: opts.nodeId, deliver: (msgs) => this.deliver(msgs), inbox: this.inbox });
    this.server = new grpc.Server(SERVER_OPTIONS);
    this.server.addService(pb.RaftTransportService, this.inbound.handlers());
  }

  /** Binds the server; resolves with the address peers should use ("host:port"). */
  async start(): Promise<string> {
    const creds = serverCredentials(this.opts.tls);
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(this.opts.listenAddress, creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    const host = this.opts.listenAddress.slice(0, this.opts.listenAddress.lastIndexOf(":"));
    this.boundAddress = `${host}:${port}`;
    return this.boundAddress;
  }

  /** The bound "host:port" (after start()). */
  get address(): string {
    if (!this.boundAddress) throw new Error("transport not started");
    return this.boundAddress;
  }

  /** Sets where each peer listens; peers not in the map are disconnected. Our own id is ignored. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    if (this.closing) return;
    for (const [id, client] of this.peers) {
      if (peers.get(id) !== client.address) {
        this.peers.delete(id);
        void client.close(0);
      }
    }
    for (const [id, address] of peers) {
      if (id === this.nodeId || this.peers.has(id)) continue;
      this.peers.set(
        id,
        new PeerClient(id, address, this.clientCreds, {
          maxQueue: this.opts.maxQueue ?? 4096,
          onUnreachable: (peer) => this.opts.onUnreachable?.(peer),
          backoffInitialMs: this.opts.backoffInitialMs ?? 50,
          backoffMaxMs: this.opts.backoffMaxMs ?? 2_000,
        }),
      );
    }
  }

  /**
   * Queues messages to their destinations and returns at once. Delivery is best
   * effort (Raft retries): messages are dropped when a peer's queue is full or it is down.
   * Snapshot messages should go through sendSnapshot(); here their data travels inline.
   */
  send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (this.filter && !this.filter(m)) {
        this.filtered++;
        continue;
      }
      const peer = this.peers.get(m.to);
      if (!peer) {
        this.unknownDestination++;
        continue;
      }
      peer.enqueue(messageToProto(m));
    }
  }

  /**
   * Streams a snapshot to `msg.to`, resuming where the receiver left off. `msg` is
   * the core's snapshot message (its data is ignored; the bytes come from `source`).
   * Resolves once the receiver holds every byte and has handed the core the message.
   * Rejects on failure; calling again with the same snapshot resumes.
   */
  async sendSnapshot(msg: Message, source: SnapshotSource): Promise<void> {
    if (this.closing) throw new Error("transport closed");
    if (this.filter && !this.filter(msg)) {
      this.filtered++;
      throw new Error(`snapshot to ${msg.to} dropped by the filter`);
    }
    const peer = this.peers.get(msg.to);
    if (!peer) throw new Error(`no address for ${msg.to}`);
    const abort = new AbortController();
    this.snapshotAborts.add(abort);
    try {
      await streamSnapshot(peer.client, msg, source, {
        chunkSize: this.opts.snapshotChunkSize,
        signal: abort.signal,
      });
    } finally {
      this.snapshotAborts.delete(abort);
    }
  }

  /** Fault injection: only messages for which `f` returns true pass, in both directions. */
  setFilter(f: MessageFilter | undefined): void {
    this.filter = f;
  }

  stats(): TransportStats {
    const peers: Record<NodeId, PeerStats> = {};
    for (const [id, p] of this.peers) peers[id] = p.stats();
    return {
      peers,
      unknownDestination: this.unknownDestination,
      filtered: this.filtered,
      rejected: this.inbound.rejected,
    };
  }

  /**
   * Stops sending and serving: ends our streams and answers the peers' streams,
   * then waits for the server to drain, forcing it after `shutdownGraceMs`.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const grace = this.opts.shutdownGraceMs ?? 1_000;
    // Stop accepting first, so peers reconnecting meanwhile do not hold the server open.
    const drained = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.inbound.endAll();
    for (const a of this.snapshotAborts) a.abort();
    const clients = [...this.peers.values()];
    this.peers.clear();
    await Promise.all(clients.map((c) => c.close(grace)));
    await this.inbox.close();
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, grace);
    });
    await Promise.race([drained, forced]);
    clearTimeout(timer);
  }

  private deliver(msgs: Message[]): void {
    if (this.closing) return;
    const pass = this.filter ? msgs.filter((m) => this.filter!(m)) : msgs;
    this.filtered += msgs.length - pass.length;
    if (pass.length > 0) this.opts.onMessages(pass);
  }
}
