// The Raft state machine of one node: messages and ticks in, messages and log
// changes out. No I/O, no clock, no randomness except the injected `random`.
// RawNode (raw-node.ts) packages its output into Ready batches for a driver.
//
// Election (pre-vote, votes, check-quorum) lives in election.ts and replication
// (appends, commit, snapshots) in replication.ts; this file holds the state, the
// role transitions and the dispatch of messages by term and role.

import { cloneConfig, replicas, voters } from "./confchange.ts";
import { Configurations } from "./configuration.ts";
import type { ConfChange } from "./confchange.ts";
import * as election from "./election.ts";
import { Progress } from "./progress.ts";
import { quorumIndex } from "./quorum.ts";
import { RaftLog } from "./raft-log.ts";
import * as reads from "./read-index.ts";
import { ReadRounds } from "./read-index.ts";
import * as proposals from "./proposal.ts";
import * as replication from "./replication.ts";
import * as snapshots from "./snapshot.ts";
import * as transfer from "./transfer.ts";
import { emptyMessage } from "./types.ts";
import type { Config, Entry, HardState, Message, MessageType, NodeId, ReadState, SnapshotMeta, StateRole } from "./types.ts";

export interface RaftOptions {
  id: NodeId;
  /** Ticks without hearing from a leader before campaigning (randomised in [T, 2T)). */
  electionTicks: number;
  /** Ticks between a leader's heartbeats. */
  heartbeatTicks: number;
  /** A number in [0, 1): the only source of randomness, so simulations replay exactly. */
  random: () => number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Flow control: entries and bytes per append message, appends in flight per follower. */
  maxMsgEntries?: number;
  maxMsgBytes?: number;
  maxInflight?: number;
  /** Committed entries handed out per Ready. */
  maxApplyEntries?: number;
}

export interface InitialState {
  hardState: HardState;
  /** The snapshot the log starts after (index 0, term 0 and an empty config for none). */
  snapshot: SnapshotMeta;
  entries: Entry[];
  /** How far the state machine had already applied (it survives restarts on its own). */
  applied?: number;
}

export type ProposeResult = { ok: true; index: number; term: number } | { ok: false; error: string; leader: NodeId };

export class Raft {
  readonly id: NodeId;
  readonly opts: Required<RaftOptions>;

  term: number;
  vote: NodeId;
  role: StateRole = "follower";
  leader: NodeId = "";
  log: RaftLog;

  /** Every configuration in the log; the latest one is in force (configuration.ts). */
  readonly configurations: Configurations;
  /** The newest snapshot the application holds (what a lagging follower is sent). */
  latestSnapshot: SnapshotMeta;
  /** An incoming snapshot the driver must install (follower side). */
  pendingInstall: SnapshotMeta | undefined;

  /** The term in the last hard state the driver made durable. */
  durableTerm: number;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;

  /** Leader: one per replica (voters and standbys), including itself. */
  progress = new Map<NodeId, Progress>();
  /**
   * Leader: nodes just demoted to spare, with the index of the configuration entry
   * that demotes them. They keep receiving the log (not counted anywhere) until they
   * hold that entry: a spare gets no messages, so without it a demoted node would never
   * learn its new role and would wait for a leader as if it were a cut-off replica.
   */
  readonly leaving = new Map<NodeId, number>();
  /** Candidate / pre-candidate: the answers so far. */
  votes = new Map<NodeId, boolean>();
  /** Leader: index of the last conf change in the log; a new one waits until it is committed. */
  pendingConfIndex = 0;
  /** Leader: the node leadership is being handed to, if any. */
  leadTransferee: NodeId = "";
  readRounds = new ReadRounds();
  /** Leader: entries were appended since the last broadcast (see RawNode.ready). */
  appendPending = false;

  /** Output collected until the next Ready. */
  msgs: Message[] = [];
  msgsAfterPersist: Message[] = [];
  readStates: ReadState[] = [];
  droppedReads: number[] = [];

  constructor(opts: RaftOptions, initial: InitialState) {
    this.id = opts.id;
    this.opts = {
      preVote: true,
      checkQuorum: true,
      maxMsgEntries: 512,
      maxMsgBytes: 1 << 20,
      maxInflight: 64,
      maxApplyEntries: 4096,
      ...opts,
    };
    this.term = initial.hardState.term;
    this.vote = initial.hardState.vote;
    this.durableTerm = this.term;
    this.latestSnapshot = { ...initial.snapshot, config: cloneConfig(initial.snapshot.config) };
    this.log = new RaftLog(initial.snapshot, initial.entries, initial.hardState.commit);
    // The configuration is the snapshot's plus every committed change after it.
    this.configurations = new Configurations(initial.snapshot);
    this.configurations.rewrite(this.log.firstIndex(), this.log);
    this.log.takeChangedFrom();
    this.log.applied = Math.max(this.log.applied, Math.min(initial.applied ?? 0, this.log.committed));
    this.resetRandomizedElectionTimeout();
  }

  // ---- helpers used across the core ----

  /** The configuration in force. */
  get config(): Config {
    return this.configurations.current();
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  voters(): NodeId[] {
    return voters(this.config);
  }

  /** Only voters campaign; standbys, spares and removed nodes never do. */
  promotable(): boolean {
    return this.config.members[this.id]?.role === "voter";
  }

  send(m: Message): void {
    if (m.to === this.id) throw new Error(`${this.id} sending ${m.type} to itself`);
    // Messages a leader sends (appends, heartbeats, snapshots) depend on nothing but
    // its term, so once that term is durable they may leave before this Ready's
    // fsync: that is what lets the leader's disk write overlap replication. A single
    // voter wins its election without asking anyone, so its new term may not be
    // durable yet; a crash would then let it lead the same term twice. Everything
    // else (votes, acknowledgements) waits until the state it reports is durable.
    if (this.role === "leader" && leaderMessageTypes.has(m.type) && this.durableTerm === this.term) this.msgs.push(m);
    else this.msgsAfterPersist.push(m);
  }

  message(type: MessageType, to: NodeId): Message {
    return emptyMessage(type, this.id, to, this.term);
  }

  resetRandomizedElectionTimeout(): void {
    const t = this.opts.electionTicks;
    this.randomizedElectionTimeout = t + Math.floor(this.opts.random() * t);
  }

  quorumActive(): boolean {
    const active = (id: NodeId) => (id === this.id || this.progress.get(id)?.recentActive ? 1 : 0);
    return quorumIndex(this.voters(), active) === 1;
  }

  // ---- role transitions ----

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = "";
    }
    this.leader = "";
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = "";
    this.votes.clear();
    this.progress.clear();
    for (const r of this.readRounds.clear()) reads.refuseRead(this, r.requestId, r.from);
  }

  becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.role = "follower";
    this.leader = leader;
  }

  becomePreCandidate(): void {
    // A pre-candidate changes neither its term nor its vote: failing a pre-vote must
    // leave no trace, which is the whole point of pre-vote.
    const term = this.term;
    this.reset(term);
    this.role = "pre-candidate";
  }

  becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  becomeLeader(): void {
    this.reset(this.term);
    this.role = "leader";
    this.leader = this.id;
    this.resetProgress();
    // Commit an entry of our own term before serving reads or conf changes:
    // earlier-term entries only commit indirectly through it (§5.4.2).
    this.pendingConfIndex = this.log.lastIndex() + 1;
    this.appendEntries([{ index: 0, term: 0, type: "normal", data: new Uint8Array() }]);
  }

  resetProgress(): void {
    this.progress.clear();
    this.leaving.clear();
    for (const id of replicas(this.config)) {
      const pr = new Progress(this.log.lastIndex() + 1, this.opts.maxInflight);
      if (id === this.id) {
        pr.match = this.log.stable;
        pr.becomeReplicate();
      }
      this.progress.set(id, pr);
    }
  }

  // ---- input ----

  tick(): void {
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      election.campaign(this, this.opts.preVote ? "pre-vote" : "election");
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.opts.electionTicks) {
      this.electionElapsed = 0;
      if (this.opts.checkQuorum) {
        // A leader that cannot hear from a majority steps down, so clients stop
        // waiting on it and its lease no longer holds followers back.
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, "");
          return;
        }
        for (const [id, pr] of this.progress) pr.recentActive = id === this.id;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = "";
    }
    if (this.heartbeatElapsed >= this.opts.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      replication.broadcastHeartbeat(this);
    }
  }

  step(m: Message): void {
    if (m.term > this.term) {
      if ((m.type === "vote" || m.type === "prevote") && !m.transfer && this.inLease()) {
        // We heard from a live leader within the election timeout: a node campaigning
        // now is partitioned or flapping, and must not disturb the cluster.
        return;
      }
      if (m.type === "prevote" || (m.type === "prevote-resp" && !m.reject)) {
        // Pre-votes never move terms: the asked term is only hypothetical.
      } else if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, "");
      }
    } else if (m.term < this.term) {
      if (m.type === "append" || m.type === "heartbeat") {
        // A stale leader (e.g. after a partition heals): tell it our term so it steps
        // down. With check-quorum and pre-vote it could otherwise never learn it, as
        // we ignore its pre-votes.
        this.send(this.message("append-resp", m.from));
      } else if (m.type === "prevote") {
        const resp = this.message("prevote-resp", m.from);
        resp.reject = true;
        this.send(resp);
      }
      return;
    }

    switch (m.type) {
      case "prevote":
      case "vote":
        election.handleVoteRequest(this, m);
        return;
    }
    switch (this.role) {
      case "leader":
        return this.stepLeader(m);
      case "follower":
        return this.stepFollower(m);
      default:
        return this.stepCandidate(m);
    }
  }

  inLease(): boolean {
    return this.opts.checkQuorum && this.leader !== "" && this.electionElapsed < this.opts.electionTicks;
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    switch (m.type) {
      case "append-resp":
        if (pr) replication.handleAppendResponse(this, m, pr);
        return;
      case "heartbeat-resp":
        if (pr) replication.handleHeartbeatResponse(this, m, pr);
        return;
      case "read-index":
        reads.requestRead(this, m.context, m.from);
        return;
      case "transfer-leader":
        // As in etcd, `from` names the node to hand leadership to.
        transfer.transferLeadership(this, m.from);
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "append":
        this.electionElapsed = 0;
        this.leader = m.from;
        replication.handleAppend(this, m);
        return;
      case "heartbeat":
        this.electionElapsed = 0;
        this.leader = m.from;
        replication.handleHeartbeat(this, m);
        return;
      case "snapshot":
        this.electionElapsed = 0;
        this.leader = m.from;
        replication.handleSnapshot(this, m);
        return;
      case "timeout-now":
        // Our leader hands leadership to us: campaign at once, without pre-vote,
        // and tell voters to ignore their lease.
        if (this.promotable()) election.campaign(this, "transfer");
        return;
      case "transfer-leader":
        if (this.leader) this.send({ ...m, to: this.leader, term: this.term, from: m.from });
        return;
      case "read-index-resp":
        if (m.reject) this.droppedReads.push(m.context);
        else this.readStates.push({ index: m.index, requestId: m.context });
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "append":
      case "heartbeat":
      case "snapshot":
        // Someone won this term.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case "prevote-resp":
      case "vote-resp":
        election.handleVoteResponse(this, m);
        return;
    }
  }

  // ---- requests from the driver ----

  /** Appends entries as leader, assigning index and term. */
  appendEntries(entries: Entry[]): void {
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => ({ ...e, index: ++index, term: this.term }));
    this.log.truncateAndAppend(stamped);
    this.logChanged();
    // Our own entry counts toward commit only once it is durable (see advanceStable).
    // Followers get new entries with the next Ready: proposals arriving one by one
    // then travel as one append per follower instead of one each.
    this.appendPending = true;
  }

  propose(data: Uint8Array): ProposeResult {
    return proposals.propose(this, data);
  }

  proposeConfChange(cc: ConfChange): ProposeResult {
    return proposals.proposeConfChange(this, cc);
  }

  /** Asks for a linearizable read; a ReadState with `requestId` comes out once it is safe. */
  readIndex(requestId: number): void {
    reads.requestRead(this, requestId, this.id);
  }

  transferLeadership(to: NodeId): void {
    transfer.transferLeadership(this, to);
  }

  // ---- commit and configuration ----

  /** Moves the commit index. A leader whose own removal or demotion is now committed steps down. */
  commitTo(index: number): boolean {
    if (!this.log.commitTo(index)) return false;
    if (this.role === "leader" && !this.promotable() && this.configurations.currentIndex() <= this.log.committed) {
      this.becomeFollower(this.term, "");
    }
    return true;
  }

  /** Call after appending to the log: configurations in new entries take effect now. */
  logChanged(): void {
    const from = this.log.takeChangedFrom();
    if (from === Infinity || !this.configurations.rewrite(from, this.log)) return;
    if (this.role !== "leader") return;
    // Replicate to the new configuration's replicas at once. A leader that the new
    // configuration demotes keeps leading (without counting itself) until the entry
    // commits, then steps down (commitTo).
    for (const id of replicas(this.config)) {
      if (!this.progress.has(id)) this.progress.set(id, new Progress(this.log.lastIndex() + 1, this.opts.maxInflight));
    }
    for (const id of [...this.progress.keys()]) {
      if (id === this.id) continue;
      const member = this.config.members[id];
      if (member?.role === "spare" && this.configurations.currentIndex() > (this.progress.get(id)?.match ?? 0)) {
        this.leaving.set(id, this.configurations.currentIndex());
      } else if (!member || member.role === "spare") {
        this.forget(id);
      }
    }
    for (const id of [...this.leaving.keys()]) if (this.config.members[id]?.role !== "spare") this.leaving.delete(id);
  }

  /** Leader: a node demoted to spare acknowledged the entry that demotes it; stop replicating to it. */
  maybeForgetLeaving(id: NodeId): void {
    const until = this.leaving.get(id);
    if (until !== undefined && (this.progress.get(id)?.match ?? 0) >= until) this.forget(id);
  }

  private forget(id: NodeId): void {
    this.progress.delete(id);
    this.leaving.delete(id);
  }

  /** The configuration as of `index` (for describing a snapshot taken there). */
  configAt(index: number): Config {
    return this.configurations.at(index);
  }

  /** The driver made entries up to `index` durable. */
  advanceStable(index: number): void {
    if (index <= this.log.stable || this.log.term(index) === undefined) return;
    this.log.stable = index;
    if (this.role === "leader") {
      const self = this.progress.get(this.id);
      if (self && self.maybeUpdate(index)) replication.maybeCommit(this);
    }
  }

  /** See snapshot.ts. */
  compact(index: number, keepEntries: number): SnapshotMeta {
    return snapshots.compact(this, index, keepEntries);
  }

  restoreSnapshot(meta: SnapshotMeta): void {
    snapshots.restore(this, meta);
  }
}

const leaderMessageTypes = new Set<MessageType>(["append", "heartbeat", "snapshot", "timeout-now"]);
