// The driver's handle on the core: feed it ticks, messages and requests, collect
// a Ready batch, carry it out (see the Ready type for the order) and call advance().

import type { ConfChange } from "./confchange.ts";
import { selfVoteDurable } from "./election.ts";
import { Raft } from "./raft.ts";
import type { InitialState, ProposeResult, RaftOptions } from "./raft.ts";
import * as replication from "./replication.ts";
import type { Entry, HardState, Message, NodeId, Ready, SnapshotMeta, SoftState, StateRole } from "./types.ts";

export interface NodeStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  role: StateRole;
  leader: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  snapshotIndex: number;
  config: Raft["config"];
  /** Leader only: how far each replica is known to match. */
  progress: Record<NodeId, { match: number; next: number; state: string; recentActive: boolean }>;
}

export class RawNode {
  readonly raft: Raft;
  private prevHard: HardState;
  private prevSoft: SoftState;

  constructor(opts: RaftOptions, initial: InitialState) {
    this.raft = new Raft(opts, initial);
    this.prevHard = this.raft.hardState();
    this.prevSoft = { leader: "", role: "follower" };
  }

  tick(): void {
    this.raft.tick();
  }

  step(m: Message): void {
    // Local-only message types never come from the network.
    if (m.to !== this.raft.id) return;
    this.raft.step(m);
  }

  /** Starts an election now (with pre-vote), as if the election timeout had passed. A leader ignores it. */
  campaign(): void {
    if (this.raft.role === "leader") return;
    this.raft.electionElapsed = this.raft.randomizedElectionTimeout;
    this.raft.tick();
  }

  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose(data);
  }

  proposeConfChange(cc: ConfChange): ProposeResult {
    return this.raft.proposeConfChange(cc);
  }

  readIndex(requestId: number): void {
    this.raft.readIndex(requestId);
  }

  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  reportUnreachable(id: NodeId): void {
    replication.reportUnreachable(this.raft, id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    replication.reportSnapshot(this.raft, id, ok);
  }

  /** See Raft.compact. */
  compact(index: number, keepEntries: number): SnapshotMeta {
    return this.raft.compact(index, keepEntries);
  }

  hasReady(): boolean {
    const r = this.raft;
    return (
      r.msgs.length > 0 ||
      r.msgsAfterPersist.length > 0 ||
      r.readStates.length > 0 ||
      r.droppedReads.length > 0 ||
      r.pendingInstall !== undefined ||
      r.readRounds.broadcastNeeded ||
      r.appendPending ||
      r.log.stable < r.log.lastIndex() ||
      r.log.applied < Math.min(r.log.committed, r.log.lastIndex()) ||
      !sameHard(r.hardState(), this.prevHard) ||
      r.leader !== this.prevSoft.leader ||
      r.role !== this.prevSoft.role
    );
  }

  ready(): Ready {
    const r = this.raft;
    // Reads that arrived since the last Ready share one heartbeat round.
    if (r.role === "leader" && r.appendPending) replication.broadcastAppend(r);
    r.appendPending = false;
    if (r.role === "leader" && r.readRounds.broadcastNeeded) replication.broadcastHeartbeat(r);
    const hard = r.hardState();
    const soft: SoftState = { leader: r.leader, role: r.role };
    const rd: Ready = {
      entries: r.log.unstableEntries(),
      messages: r.msgs,
      messagesAfterPersist: r.msgsAfterPersist,
      committedEntries: r.log.nextCommittedEntries(r.opts.maxApplyEntries),
      readStates: r.readStates,
      droppedReads: r.droppedReads,
    };
    if (!sameHard(hard, this.prevHard)) rd.hardState = hard;
    if (soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role) rd.softState = soft;
    if (r.pendingInstall) rd.snapshot = { meta: r.pendingInstall, data: new Uint8Array() };
    r.msgs = [];
    r.msgsAfterPersist = [];
    r.readStates = [];
    r.droppedReads = [];
    r.pendingInstall = undefined;
    if (rd.hardState) this.prevHard = hard;
    // Handed out means applied as far as the core is concerned: the driver applies
    // them in order before it applies anything else (see takeStableCommitted).
    if (rd.committedEntries.length) r.log.applied = rd.committedEntries[rd.committedEntries.length - 1].index;
    if (rd.softState) this.prevSoft = soft;
    return rd;
  }

  /** The driver has carried out `rd`: its entries are durable and its committed entries applied. */
  advance(rd: Ready): void {
    const r = this.raft;
    if (rd.hardState) {
      r.durableTerm = rd.hardState.term;
      selfVoteDurable(r);
    }
    if (rd.entries.length) {
      const last = rd.entries[rd.entries.length - 1];
      // A later step may have replaced these entries; then they are not the durable ones.
      if (r.log.term(last.index) === last.term) r.advanceStable(last.index);
    } else if (rd.snapshot) {
      r.advanceStable(rd.snapshot.meta.index);
    }
  }

  /**
   * Committed entries that are already durable here and not yet handed out: the
   * driver may apply them while a Ready is still waiting for its fsync (a leader
   * answers its clients for the last batch while writing the next one).
   */
  takeStableCommitted(): Entry[] {
    const log = this.raft.log;
    const hi = Math.min(log.committed, log.stable);
    if (log.applied >= hi) return [];
    const entries = log.slice(log.applied + 1, hi, this.raft.opts.maxApplyEntries);
    log.applied = entries[entries.length - 1].index;
    return entries;
  }

  status(): NodeStatus {
    const r = this.raft;
    const progress: NodeStatus["progress"] = {};
    for (const [id, pr] of r.progress) {
      progress[id] = { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive };
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      role: r.role,
      leader: r.leader,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      snapshotIndex: r.latestSnapshot.index,
      config: r.config,
      progress,
    };
  }
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
