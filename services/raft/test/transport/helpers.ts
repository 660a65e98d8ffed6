// Shared fixtures for the transport tests.
import type { Message, NodeId, SnapshotMeta } from "../../src/core/types.ts";
import { generateCertificate, type CertificatePair } from "../../src/transport/certificate.ts";
import type { TlsConfig } from "../../src/transport/credentials.ts";
import { PeerTransport, type PeerTransportOptions } from "../../src/transport/peer-transport.ts";
import type { SnapshotReceiver, SnapshotSink } from "../../src/transport/snapshot.ts";

let cluster: Promise<CertificatePair> | undefined;

/** One certificate shared by the whole test cluster, as in LXD. */
export function clusterCert(): Promise<CertificatePair> {
  cluster ??= generateCertificate({ commonName: "shoal-test", hosts: ["127.0.0.1", "localhost"] });
  return cluster;
}

export async function clusterTls(): Promise<TlsConfig> {
  const c = await clusterCert();
  return { cert: c.cert, key: c.key, ca: c.cert };
}

/** Polls until `cond` holds; fails after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Keeps finished snapshots in memory; remembers what the transport asked of it. */
export class MemoryReceiver implements SnapshotReceiver {
  finished: Array<{ meta: SnapshotMeta; from: NodeId; data: Buffer }> = [];
  begins = 0;
  aborts = 0;
  /** Bytes held by the most recent sink. */
  held = 0;

  begin(meta: SnapshotMeta, from: NodeId): SnapshotSink {
    this.begins++;
    const chunks: Buffer[] = [];
    this.held = 0;
    return {
      offset: 0,
      write: async (offset, chunk) => {
        if (offset !== this.held) throw new Error(`write at ${offset}, expected ${this.held}`);
        chunks.push(Buffer.from(chunk));
        this.held += chunk.length;
      },
      finish: async () => {
        this.finished.push({ meta, from, data: Buffer.concat(chunks) });
      },
      abort: async () => {
        this.aborts++;
      },
    };
  }
}

export interface TestNode {
  id: NodeId;
  transport: PeerTransport;
  received: Message[];
  unreachable: NodeId[];
  snapshots: MemoryReceiver;
}

/** Starts a transport on 127.0.0.1 with a free port. */
export async function startNode(
  id: NodeId,
  extra: Partial<PeerTransportOptions> = {},
  tls?: TlsConfig,
): Promise<TestNode> {
  const received: Message[] = [];
  const unreachable: NodeId[] = [];
  const snapshots = new MemoryReceiver();
  const transport = new PeerTransport({
    nodeId: id,
    listenAddress: "127.0.0.1:0",
    tls: tls ?? (await clusterTls()),
    onMessages: (msgs) => received.push(...msgs),
    onUnreachable: (peer) => unreachable.push(peer),
    snapshots,
    shutdownGraceMs: 500,
    ...extra,
  });
  await transport.start();
  return { id, transport, received, unreachable, snapshots };
}

/** Tells every node where every other node listens. */
export function connect(nodes: TestNode[]): void {
  const peers = new Map(nodes.map((n) => [n.id, n.transport.address] as const));
  for (const n of nodes) n.transport.setPeers(peers);
}

export const META: SnapshotMeta = {
  index: 42,
  term: 3,
  config: { members: { a: { role: "voter", address: "127.0.0.1:1" }, b: { role: "standby", address: "x:2" } } },
};

/** Deterministic pseudo-random bytes. */
export function pattern(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
