// The receiving end of InstallSnapshot: chunks are appended strictly in order
// into a temp directory and published as a snapshot only when complete. The
// temp directory has a fixed name per snapshot, so a transfer interrupted by a
// dropped connection can resume where it stopped instead of starting over.

import { closeSync, fstatSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { SnapshotMeta } from "../core/types.ts";
import { DATA_FILE } from "./snapshot-layout.ts";

export interface StoredSnapshot {
  meta: SnapshotMeta;
  /** The snapshot's data file (opaque bytes: the state machine's database). */
  dataPath: string;
}

/** Answer to a chunk: `offset` is where the next chunk must start (the sender resumes from it). */
export interface ReceiveProgress {
  accepted: boolean;
  offset: number;
}

/** What the store lends a receiver: publishing and forgetting it. */
export interface ReceiverHost {
  publish(tempDir: string, meta: SnapshotMeta): StoredSnapshot;
  discard(tempDir: string): void;
  released(receiver: SnapshotReceiver): void;
}

export class SnapshotReceiver {
  private fd: number;
  private written: number;
  private state: "open" | "finished" | "aborted" | "superseded" = "open";

  /** Opens the data file in `tempDir` (created by the store) and resumes after its current length. */
  constructor(
    readonly meta: SnapshotMeta,
    private readonly tempDir: string,
    private readonly host: ReceiverHost,
  ) {
    this.fd = openSync(join(tempDir, DATA_FILE), "r+");
    this.written = fstatSync(this.fd).size;
  }

  /** Bytes received so far: the offset the next chunk must carry. */
  get offset(): number {
    return this.written;
  }

  /**
   * Appends `chunk` if it starts exactly at the bytes received so far. Anything
   * else (a duplicate, a gap) is refused without effect, reporting the offset
   * the sender should continue from.
   */
  write(offset: number, chunk: Uint8Array): ReceiveProgress {
    this.checkOpen();
    if (offset !== this.written) return { accepted: false, offset: this.written };
    for (let done = 0; done < chunk.length; ) {
      done += writeSync(this.fd, chunk, done, chunk.length - done, this.written + done);
    }
    this.written += chunk.length;
    return { accepted: true, offset: this.written };
  }

  /** fsyncs and atomically publishes the received snapshot. */
  finish(): StoredSnapshot {
    this.checkOpen();
    this.release("finished");
    return this.host.publish(this.tempDir, this.meta);
  }

  /** Drops the partial snapshot. Safe to call more than once. */
  abort(): void {
    if (this.state !== "open") return;
    this.release("aborted");
    this.host.discard(this.tempDir);
  }

  /** A newer beginReceive for the same snapshot took over the temp directory. */
  supersede(): void {
    if (this.state === "open") this.release("superseded");
  }

  private release(state: "finished" | "aborted" | "superseded"): void {
    this.state = state;
    closeSync(this.fd);
    this.fd = -1;
    this.host.released(this);
  }

  private checkOpen(): void {
    if (this.state !== "open") throw new Error(`snapshot receive ${this.meta.index}/${this.meta.term} is ${this.state}`);
  }
}
