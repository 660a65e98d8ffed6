// Sending side of snapshot streaming: ask the receiver where to resume, then
// stream the rest in chunks, honouring gRPC flow control.
import * as grpc from "@grpc/grpc-js";
import type { Message } from "../core/types.ts";
import type * as pb from "../../../../proto/gen/raft.ts";
import { snapshotMetaToProto } from "./codec.ts";
import { DEFAULT_SNAPSHOT_CHUNK, type SnapshotSource } from "./snapshot.ts";
import { statusError } from "./status.ts";

export interface SendSnapshotOptions {
  chunkSize?: number;
  /** Cancels the transfer (the receiver keeps what it has for a later resume). */
  signal?: AbortSignal;
  /** Deadline of the SnapshotOffset query; default 10 s. */
  queryTimeoutMs?: number;
}

/** Streams `source` as the bytes of the snapshot message `msg`; resolves once the receiver holds them all. */
export async function streamSnapshot(
  client: pb.RaftTransportClient,
  msg: Message,
  source: SnapshotSource,
  opts: SendSnapshotOptions = {},
): Promise<void> {
  if (msg.type !== "snapshot" || !msg.snapshot) throw new TypeError("sendSnapshot needs a snapshot message");
  const chunkSize = opts.chunkSize ?? DEFAULT_SNAPSHOT_CHUNK;
  const meta = snapshotMetaToProto(msg.snapshot.meta);
  const size = source.size;
  opts.signal?.throwIfAborted();

  const start = await queryOffset(client, { from: msg.from, to: msg.to, meta, totalSize: size }, opts);
  if (start > size) throw new Error(`receiver holds ${start} bytes of a ${size}-byte snapshot`);

  let call: grpc.ClientWritableStream<pb.SnapshotChunk> | undefined;
  const done = new Promise<pb.SnapshotAck>((resolve, reject) => {
    call = client.installSnapshot((err, ack) => (err ? reject(err) : resolve(ack!)));
  });
  done.catch(() => {}); // observed below; avoid an unhandled rejection while we are still writing
  const stream = call!;
  stream.on("error", () => {}); // the callback reports failures
  const onAbort = () => stream.cancel();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    let offset = start;
    let first = true;
    // The first chunk is always sent, even empty, so the receiver learns meta and term.
    while (first || offset < size) {
      const data = offset < size ? await source.read(offset, Math.min(chunkSize, size - offset)) : new Uint8Array(0);
      if (offset < size && data.length === 0) throw new Error(`snapshot source returned nothing at ${offset}`);
      opts.signal?.throwIfAborted();
      const chunk: pb.SnapshotChunk = {
        from: msg.from,
        to: msg.to,
        term: first ? msg.term : 0,
        meta: first ? meta : undefined,
        totalSize: first ? size : 0,
        offset,
        data: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      };
      if (!stream.write(chunk)) await drained(stream, done);
      offset += data.length;
      first = false;
    }
    stream.end();
    const ack = await done;
    if (ack.received !== size) throw new Error(`receiver acknowledged ${ack.received} of ${size} bytes`);
  } catch (err) {
    stream.cancel();
    throw err;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

function queryOffset(
  client: pb.RaftTransportClient,
  req: pb.SnapshotOffsetRequest,
  opts: SendSnapshotOptions,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + (opts.queryTimeoutMs ?? 10_000);
    const onAbort = () => call.cancel();
    const call = client.snapshotOffset(req, new grpc.Metadata(), { deadline }, (err, reply) => {
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve(reply!.offset);
    });
    opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Waits for 'drain', or fails as soon as the call does (a failed call never drains). */
function drained(stream: grpc.ClientWritableStream<pb.SnapshotChunk>, done: Promise<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => resolve();
    stream.once("drain", onDrain);
    done.then(
      () => {
        stream.off("drain", onDrain);
        reject(statusError(grpc.status.INTERNAL, "receiver answered before the stream ended"));
      },
      (err: unknown) => {
        stream.off("drain", onDrain);
        reject(err);
      },
    );
  });
}
