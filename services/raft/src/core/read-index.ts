// Linearizable reads without writing to the log (ReadIndex, Raft thesis §6.4).
//
// A read remembers the commit index at the time it arrived and the leader's next
// "read round". Every heartbeat and append the leader sends carries the current
// round number, and replies echo it. Once a majority of voters has acknowledged a
// round at or after the read's, the leader has proven it was still the leader after
// the read arrived, so the state at the remembered commit index is fresh enough.
// Under write load the rounds ride on appends; an idle leader sends one heartbeat
// per batch of reads.

import { quorumIndex } from "./quorum.ts";
import type { Raft } from "./raft.ts";
import type { NodeId } from "./types.ts";

export interface PendingRead {
  /** The commit index when the read arrived: the state to read must include it. */
  index: number;
  round: number;
  requestId: number;
  /** Who asked: this node, or a follower that forwarded the read. */
  from: NodeId;
}

export class ReadRounds {
  /** The round number that messages sent from now on carry. */
  current = 0;
  /** Whether reads are waiting for a round that has not been broadcast yet. */
  broadcastNeeded = false;
  private pending: PendingRead[] = [];

  add(index: number, requestId: number, from: NodeId): void {
    if (!this.broadcastNeeded) {
      this.current++;
      this.broadcastNeeded = true;
    }
    this.pending.push({ index, round: this.current, requestId, from });
  }

  /** Reads whose round a quorum has acknowledged (`ackedRound` = the quorum's round). */
  release(ackedRound: number): PendingRead[] {
    let n = 0;
    while (n < this.pending.length && this.pending[n].round <= ackedRound) n++;
    return n === 0 ? [] : this.pending.splice(0, n);
  }

  hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Leadership is lost: the reads cannot be confirmed by this node any more. */
  clear(): PendingRead[] {
    const dropped = this.pending;
    this.pending = [];
    this.broadcastNeeded = false;
    return dropped;
  }
}

/** A read asked of this node (`from` = itself) or forwarded to it by a follower. */
export function requestRead(r: Raft, requestId: number, from: NodeId): void {
  if (r.role !== "leader") {
    if (r.leader && from === r.id) {
      const m = r.message("read-index", r.leader);
      m.context = requestId;
      r.send(m);
    } else {
      refuseRead(r, requestId, from);
    }
    return;
  }
  // Until an entry of our term is committed our commit index may be behind the
  // true one (thesis §6.4 step 1): refuse rather than serve a stale read.
  if (r.log.term(r.log.committed) !== r.term) {
    refuseRead(r, requestId, from);
    return;
  }
  const voters = r.voters();
  if (voters.length === 1 && voters[0] === r.id) {
    releaseRead(r, { index: r.log.committed, requestId, from });
    return;
  }
  r.readRounds.add(r.log.committed, requestId, from);
}

/** Leader: serves the reads whose round a majority has now acknowledged. */
export function maybeReleaseReads(r: Raft): void {
  if (!r.readRounds.hasPending()) return;
  const acked = quorumIndex(r.voters(), (id) =>
    id === r.id ? r.readRounds.current : (r.progress.get(id)?.readAck ?? 0),
  );
  for (const read of r.readRounds.release(acked)) releaseRead(r, read);
}

function releaseRead(r: Raft, read: { index: number; requestId: number; from: NodeId }): void {
  if (read.from === r.id) {
    r.readStates.push({ index: read.index, requestId: read.requestId });
  } else {
    const m = r.message("read-index-resp", read.from);
    m.index = read.index;
    m.context = read.requestId;
    r.send(m);
  }
}

/** The read cannot be served here now; the caller retries (perhaps elsewhere). */
export function refuseRead(r: Raft, requestId: number, from: NodeId): void {
  if (from === r.id) {
    r.droppedReads.push(requestId);
  } else {
    const m = r.message("read-index-resp", from);
    m.reject = true;
    m.context = requestId;
    r.send(m);
  }
}
