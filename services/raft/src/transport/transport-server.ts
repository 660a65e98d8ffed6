// Server side of RaftTransport: decodes inbound batches for the node and
// hands snapshot streams to the SnapshotInbox.
import * as grpc from "@grpc/grpc-js";
import type { Message, NodeId } from "../core/types.ts";
import type * as pb from "../../../../proto/gen/raft.ts";
import { messageFromProto } from "./codec.ts";
import type { SnapshotInbox } from "./snapshot-inbox.ts";
import { toStatusError } from "./status.ts";

export interface InboundOptions {
  nodeId: NodeId;
  /** Receives each batch's messages that are addressed to us and pass the filter. */
  deliver: (msgs: Message[]) => void;
  inbox: SnapshotInbox;
}

export class InboundService {
  /** Open Send streams and how to answer each: close() ends them so shutdown need not wait. */
  private readonly open = new Map<grpc.ServerReadableStream<pb.MessageBatch, pb.SendAck>, () => void>();
  /** Messages dropped on receipt: undecodable or addressed to another node. */
  rejected = 0;

  constructor(private readonly opts: InboundOptions) {}

  /** The implementation to register with `server.addService(RaftTransportService, ...)`. */
  handlers(): pb.RaftTransportServer {
    return {
      send: (call, callback) => void this.receive(call, callback),
      installSnapshot: (call, callback) => {
        this.opts.inbox.install(call).then(
          (received) => callback(null, { received }),
          (err: unknown) => callback(toStatusError(err)),
        );
      },
      snapshotOffset: (call, callback) => {
        this.opts.inbox.offset(call.request).then(
          (offset) => callback(null, { offset }),
          (err: unknown) => callback(toStatusError(err)),
        );
      },
    };
  }

  /** Answers every open Send stream, so peers see a clean end and the server can shut down. */
  endAll(): void {
    for (const answer of [...this.open.values()]) answer();
  }

  private async receive(
    call: grpc.ServerReadableStream<pb.MessageBatch, pb.SendAck>,
    callback: grpc.sendUnaryData<pb.SendAck>,
  ): Promise<void> {
    let received = 0;
    let answered = false;
    const answer = (err?: unknown) => {
      if (answered) return;
      answered = true;
      this.open.delete(call);
      if (err === undefined) callback(null, { received });
      else callback(toStatusError(err));
    };
    this.open.set(call, () => answer());
    // Headers at once: until a client stream has seen them, grpc-js keeps every message
    // written to it for a possible retry (up to 1 MB of them; each small one pins a whole
    // 8 KB Buffer pool slab). A follower's stream of small replies held ~15 MB that way.
    call.sendMetadata(new grpc.Metadata());
    try {
      for await (const batch of call as AsyncIterable<pb.MessageBatch>) {
        if (answered) break;
        const msgs = this.decode(batch);
        received += msgs.length;
        if (msgs.length > 0) this.opts.deliver(msgs);
      }
      answer();
    } catch (err) {
      // Cancelled by the peer (its process stopped, or it reconnects): nothing to answer.
      answer(err);
    }
  }

  private decode(batch: pb.MessageBatch): Message[] {
    const out: Message[] = [];
    for (const pm of batch.messages) {
      let m: Message;
      try {
        m = messageFromProto(pm);
      } catch {
        // A newer peer's message type we do not know: dropping it is what a lossy network would do.
        this.rejected++;
        continue;
      }
      if (m.to !== this.opts.nodeId) {
        this.rejected++;
        continue;
      }
      out.push(m);
    }
    return out;
  }
}
