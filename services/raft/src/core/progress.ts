// What a leader knows about each replica it sends the log to (etcd's "tracker").
//
// probe:     we don't know where the follower's log matches; one append in flight at a time.
// replicate: the follower is in sync; appends are pipelined up to a window of in-flight messages.
// snapshot:  the follower needs a snapshot; nothing is sent until the transfer reports back.

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** probe: an append is in flight and we wait for its answer (or a heartbeat answer). */
  probeSent = false;
  /** snapshot: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Whether we heard from it during the current check-quorum period. */
  recentActive = false;
  /** The highest commit index we told it, so it is told of every later one promptly. */
  sentCommit = 0;
  /** The highest read round it has acknowledged (see read-index.ts). */
  readAck = 0;
  /** Last indexes of the appends in flight (replicate state), oldest first. */
  private inflight: number[] = [];

  constructor(next: number, private readonly maxInflight: number) {
    this.next = next;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflight.length >= this.maxInflight;
      case "snapshot":
        return true;
    }
  }

  inflightCount(): number {
    return this.inflight.length;
  }

  becomeProbe(): void {
    // After a snapshot the follower has at least the snapshot's entries.
    const next = this.state === "snapshot" ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.reset("probe", next);
  }

  becomeReplicate(): void {
    this.reset("replicate", this.match + 1);
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.reset("snapshot", this.next);
    this.pendingSnapshot = snapshotIndex;
  }

  private reset(state: ProgressState, next: number): void {
    this.state = state;
    this.next = next;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight = [];
  }

  /** Records that an append ending at `lastIndex` was sent. */
  sentAppend(lastIndex: number, entryCount: number): void {
    if (this.state === "replicate") {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflight.push(lastIndex);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  freeOldestInflight(): void {
    this.inflight.shift();
  }

  /** A successful append response up to `index`. Returns whether match moved forward. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    // Responses free the window up to what they acknowledge.
    while (this.inflight.length && this.inflight[0] <= index) this.inflight.shift();
    return updated;
  }

  /**
   * A refused append for `rejected` (the index the leader probed), with the follower's
   * hint of where the logs may match. Returns false when the refusal is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}
