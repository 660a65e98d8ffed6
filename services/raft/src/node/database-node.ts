// A database node: drives the pure Raft core with real time, disk and network.
//
// Each turn of the loop takes one Ready from the core and carries it out in the
// order the core demands: leader appends go out at once, then the WAL write and
// its fdatasync, then acknowledgements, then the committed entries are applied to
// SQLite. Everything that arrived while the disk was busy is stepped into the next
// Ready, so one fsync covers many writes (group commit).

import { join } from "node:path";
import type { ConfChange } from "../core/confchange.ts";
import { RawNode } from "../core/raw-node.ts";
import type { NodeStatus } from "../core/raw-node.ts";
import type { Entry, Message, NodeId, Ready, Role } from "../core/types.ts";
import type { Command } from "../db/command.ts";
import { encodeCommand, checkCommand } from "../db/command.ts";
import type { Params } from "../db/param.ts";
import type { ApplyResult } from "../db/result.ts";
import type { QueryResult, SqliteStateMachine } from "../db/state-machine.ts";
import type { SnapshotStore } from "../storage/snapshot-store.ts";
import type { Wal } from "../storage/wal.ts";
import type { TlsConfig } from "../transport/credentials.ts";
import { PeerTransport } from "../transport/peer-transport.ts";
import { DatabaseError } from "./errors.ts";
import { openStorage } from "./node-storage.ts";
import { ProposalWaiters, ReadWaiters } from "./waiters.ts";
import { SnapshotKeeper } from "./snapshot-keeper.ts";
import { type ChangeEvent, WatchHub } from "./watch-hub.ts";

export interface DatabaseNodeOptions {
  id: NodeId;
  dir: string;
  /** Where peers and clients reach this node: "127.0.0.1:7001" (port 0 picks one). */
  listenAddress: string;
  tls: TlsConfig;
  /** Founding members of a new group (including this node). Omit to join an existing group. */
  bootstrap?: { id: NodeId; address: string }[];
  /**
   * Members of the group this node joins. A joiner knows no configuration until the
   * leader's log or snapshot reaches it, yet must answer the leader before that.
   */
  join?: { id: NodeId; address: string }[];
  /** One tick of the Raft clock; heartbeats every tick, elections after 10-20 ticks. */
  tickMs?: number;
  electionTicks?: number;
  /**
   * Take a snapshot after this many applied entries or bytes of entries, whichever
   * comes first; keep at most this many entries (and bytes) behind it for lagging
   * followers. The bytes bound what the in-memory log costs however big entries are.
   */
  snapshotEvery?: number;
  snapshotBytes?: number;
  keepEntries?: number;
  keepBytes?: number;
  /** How long a write or read waits before it fails (the caller may retry with the same request id). */
  requestTimeoutMs?: number;
}

export interface ExecOutcome {
  index: number;
  result: ApplyResult;
}

export class DatabaseNode {
  readonly id: NodeId;
  private raw: RawNode;
  private readonly proposals = new ProposalWaiters();
  private readonly reads = new ReadWaiters();
  private readonly watch: WatchHub;
  private ticker: NodeJS.Timeout | undefined;
  private scheduled = false;
  private driving = false;
  private lastLeader = "";
  /** Term and vote as last made durable (see handleReady). */
  private synced = { term: -1, vote: "" };
  private closed = false;
  private snapshotKeeper!: SnapshotKeeper;
  private peersKey = "";
  private readonly opts: Required<Omit<DatabaseNodeOptions, "bootstrap" | "join">>;
  private readonly knownPeers: { id: NodeId; address: string }[];

  private constructor(
    opts: DatabaseNodeOptions,
    private readonly wal: Wal,
    snapshots: SnapshotStore,
    readonly stateMachine: SqliteStateMachine,
    raw: RawNode,
    readonly transport: PeerTransport,
  ) {
    this.id = opts.id;
    this.raw = raw;
    this.opts = {
      tickMs: 50,
      electionTicks: 10,
      snapshotEvery: 8192,
      snapshotBytes: 8 << 20,
      keepEntries: 2048,
      keepBytes: 2 << 20,
      requestTimeoutMs: 10_000,
      // An option given as undefined (e.g. a command-line flag left out) keeps its default.
      ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    } as Required<Omit<DatabaseNodeOptions, "bootstrap" | "join">>;
    this.knownPeers = opts.join ?? opts.bootstrap ?? [];
    this.watch = new WatchHub(stateMachine);
    this.snapshotKeeper = new SnapshotKeeper({
      id: this.id,
      dir: this.opts.dir,
      raw,
      stateMachine,
      store: snapshots,
      wal,
      transport,
      limits: this.opts,
      closed: () => this.closed,
      schedule: () => this.schedule(),
    });
  }

  static async open(opts: DatabaseNodeOptions): Promise<DatabaseNode> {
    const storage = openStorage(opts.dir, opts.bootstrap);
    if (storage.repaired) {
      console.warn(`${opts.id}: WAL tail repaired: ${storage.repaired.reason} (${storage.repaired.truncatedBytes} bytes cut)`);
    }
    const raw = new RawNode(
      { id: opts.id, electionTicks: opts.electionTicks ?? 10, heartbeatTicks: 1, random: Math.random },
      storage.initial,
    );
    let node: DatabaseNode | undefined;
    const transport = new PeerTransport({
      nodeId: opts.id,
      listenAddress: opts.listenAddress,
      tls: opts.tls,
      onMessages: (msgs) => node?.receive(msgs),
      onUnreachable: (id) => node?.raw.reportUnreachable(id),
      snapshots: { begin: (meta, from) => node!.snapshotKeeper.receive(meta, from) },
    });
    node = new DatabaseNode(opts, storage.wal, storage.snapshots, storage.stateMachine, raw, transport);
    await transport.start();
    node.updatePeers();
    node.ticker = setInterval(() => node!.tick(), node.opts.tickMs);
    node.schedule();
    return node;
  }

  get address(): string {
    return this.transport.address;
  }

  // ---- the loop ----

  private tick(): void {
    this.raw.tick();
    this.schedule();
  }

  private receive(msgs: Message[]): void {
    if (this.closed) return;
    for (const m of msgs) this.raw.step(m);
    // While a Ready waits for its fsync, entries that just committed and are already
    // durable here can be applied (and their callers answered) at once.
    if (this.driving) {
      try {
        this.applyEntries(this.raw.takeStableCommitted());
      } catch (e) {
        console.error(`${this.id}: fatal: ${(e as Error).stack ?? e}`);
        process.exit(70);
      }
      this.reads.releaseUpTo(this.stateMachine.appliedIndex());
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => void this.drive());
  }

  /**
   * Carries out Readys one at a time. While a Ready waits for its fdatasync (off
   * the event loop), messages keep arriving and are stepped into the core; the
   * loop picks them up in the next Ready, so one fsync covers them all.
   */
  private async drive(): Promise<void> {
    this.scheduled = false;
    if (this.closed || this.driving) return;
    this.driving = true;
    try {
      while (!this.closed && this.raw.hasReady()) await this.handleReady(this.raw.ready());
    } catch (e) {
      if (this.closed) return;
      // A disk or SQLite failure must stop the node rather than let replicas diverge.
      console.error(`${this.id}: fatal: ${(e as Error).stack ?? e}`);
      process.exit(70);
    } finally {
      this.driving = false;
    }
    this.snapshotKeeper.maybeTake();
  }

  private async handleReady(rd: Ready): Promise<void> {
    // A read forwarded to a leader that is gone gets no answer; once we see the
    // leadership change, let those readers retry (readBarrier does) with the new one.
    if (rd.softState && rd.softState.leader !== this.lastLeader) {
      this.lastLeader = rd.softState.leader;
      this.reads.failUnconfirmed(DatabaseError.unavailable("the leader changed; retry the read"));
    }
    // Leader appends leave first: followers write while we do.
    this.sendAll(rd.messages);
    // Committed entries that were already durable here need not wait for this
    // Ready's fsync: a leader under load applies (and answers) the last batch
    // while the next one is being written.
    const stable = this.raw.raft.log.stable;
    const early = rd.committedEntries.filter((e) => e.index <= stable);
    const late = rd.committedEntries.slice(early.length);
    this.applyEntries(early);
    if (rd.entries.length || rd.hardState || rd.snapshot) {
      this.wal.save(rd.hardState, rd.entries, rd.snapshot ? { index: rd.snapshot.meta.index } : undefined);
    }
    // Only entries, snapshots, terms and votes must be durable before anyone hears
    // of them; a commit index that moved alone is recoverable and rides on the next fsync.
    const hs = rd.hardState;
    if (rd.entries.length || rd.snapshot || (hs && (hs.term !== this.synced.term || hs.vote !== this.synced.vote))) {
      await this.wal.syncAsync();
      if (hs) this.synced = { term: hs.term, vote: hs.vote };
      if (this.closed) return;
    }
    if (rd.snapshot) {
      this.snapshotKeeper.install(rd.snapshot.meta.index, rd.snapshot.meta.term);
      this.proposals.skippedTo(rd.snapshot.meta.index);
      this.watch.restored(rd.snapshot.meta.index);
    }
    this.sendAll(rd.messagesAfterPersist);
    // Let the transport put acknowledgements on the wire before a long apply: the
    // leader's commit waits for them, our apply does not.
    if (rd.messagesAfterPersist.length && late.length) await new Promise((r) => setImmediate(r));
    if (this.closed) return;
    this.applyEntries(late);
    const applied = this.stateMachine.appliedIndex();
    for (const rs of rd.readStates) this.reads.confirmed(rs.requestId, rs.index, applied);
    for (const id of rd.droppedReads) this.reads.refused(id, DatabaseError.unavailable("no leader could confirm the read; retry"));
    this.raw.advance(rd);
    this.reads.releaseUpTo(applied);
    this.updatePeers();
  }

  /** All in one SQLite transaction: one commit, not one per entry. */
  private applyEntries(entries: Entry[]): void {
    if (!entries.length) return;
    this.stateMachine.applyBatch(() => entries.forEach((e) => this.apply(e)));
    this.snapshotKeeper.applied(entries);
  }

  private apply(e: Entry): void {
    const sm = this.stateMachine;
    if (e.index <= sm.appliedIndex()) return;
    let result: ApplyResult | undefined;
    if (e.type === "conf") sm.applyConf(e.index, e.term);
    else result = sm.apply(e.index, e.term, e.data);
    this.proposals.applied(e.index, e.term, result);
  }

  private sendAll(msgs: Message[]): void {
    const plain = msgs.filter((m) => m.type !== "snapshot");
    if (plain.length) this.transport.send(plain);
    for (const m of msgs) if (m.type === "snapshot") void this.snapshotKeeper.send(m);
  }

  /** Keeps the transport's address book equal to the configuration's. */
  private updatePeers(): void {
    const members = this.raw.raft.config.members;
    const key = JSON.stringify(members);
    if (key === this.peersKey) return;
    this.peersKey = key;
    const peers = new Map<NodeId, string>();
    for (const p of this.knownPeers) if (p.id !== this.id) peers.set(p.id, p.address);
    for (const [id, m] of Object.entries(members)) if (id !== this.id && m.address) peers.set(id, m.address);
    this.transport.setPeers(peers);
  }

  // ---- what callers ask ----

  isLeader(): boolean {
    return this.raw.raft.role === "leader";
  }

  /** The leader as this node knows it: its id and database address. */
  leader(): { id: NodeId; address: string } | undefined {
    const id = this.raw.raft.leader;
    if (!id) return undefined;
    const address = id === this.id ? this.address : this.raw.raft.config.members[id]?.address;
    return address ? { id, address } : undefined;
  }

  private notLeader(): DatabaseError {
    return DatabaseError.notLeader(this.leader());
  }

  /**
   * Proposes a command (leader only) and waits until it is applied. A command whose
   * request id already applied returns the recorded result: retries are safe.
   */
  async exec(cmd: Command): Promise<ExecOutcome> {
    const data = encodeCommand(cmd);
    checkCommand(cmd, data.length);
    const deadline = Date.now() + this.opts.requestTimeoutMs;
    for (;;) {
      const prior = this.stateMachine.lookupRequest(cmd.requestId);
      if (prior) return { index: prior.appliedIndex, result: prior.result };
      const res = this.raw.propose(data);
      if (!res.ok) throw res.error === "not the leader" ? this.notLeader() : DatabaseError.unavailable(res.error);
      this.schedule();
      const outcome = await this.withDeadline(this.proposals.wait(res.index, res.term), deadline);
      if (outcome.committed) {
        const result = outcome.result ?? this.stateMachine.lookupRequest(cmd.requestId)?.result;
        if (!result) throw DatabaseError.internal(`entry ${outcome.index} applied without a result`);
        return { index: outcome.index, result };
      }
      // Not committed: a leader change replaced it. Propose again if we still lead.
      if (!this.isLeader()) throw this.notLeader();
    }
  }

  /** A read: linearizable (confirmed by a quorum, then served once applied) or stale (local). */
  async query(sql: string, params: Params, opts: { linearizable: boolean; minIndex?: number }): Promise<QueryResult & { appliedIndex: number }> {
    const deadline = Date.now() + this.opts.requestTimeoutMs;
    if (opts.linearizable) await this.readBarrier(deadline);
    if (opts.minIndex && opts.minIndex > this.stateMachine.appliedIndex()) await this.waitApplied(opts.minIndex, deadline);
    let rows: QueryResult;
    try {
      rows = this.stateMachine.query(sql, params);
    } catch (e) {
      throw DatabaseError.invalid((e as Error).message);
    }
    return { ...rows, appliedIndex: this.stateMachine.appliedIndex() };
  }

  /** Waits until this node's state reflects every write committed before the call. */
  async readBarrier(deadline = Date.now() + this.opts.requestTimeoutMs): Promise<number> {
    // A follower whose read no leader answers within two election timeouts is cut off,
    // or was made a spare and never heard of it (spares get no messages): it answers
    // "unavailable" so the caller asks another node, rather than holding the read until
    // the caller's deadline. The leader itself waits (its quorum may come back).
    const giveUpAt = Date.now() + 2 * this.opts.tickMs * this.opts.electionTicks * 2;
    for (;;) {
      const { id, done } = this.reads.start();
      this.raw.readIndex(id);
      this.schedule();
      const follower = !this.isLeader();
      const until = follower ? Math.min(deadline, giveUpAt) : deadline;
      try {
        return await this.withDeadline(done, until, () => this.reads.refused(id, DatabaseError.timeout("read timed out")));
      } catch (e) {
        const cutOff = follower && until < deadline && Date.now() >= until;
        if (cutOff) throw DatabaseError.unavailable("no leader answered this node's read for two election timeouts: ask another node");
        if (!(e instanceof DatabaseError) || e.code !== "unavailable" || Date.now() > deadline) throw e;
        await sleep(this.opts.tickMs);
      }
    }
  }

  private async waitApplied(index: number, deadline: number): Promise<void> {
    while (this.stateMachine.appliedIndex() < index) {
      if (Date.now() > deadline) throw DatabaseError.timeout(`index ${index} not applied here in time`);
      await sleep(5);
    }
  }

  /** A single-server membership change (leader only), waited for until applied. */
  async changeConfig(cc: ConfChange): Promise<number> {
    const deadline = Date.now() + this.opts.requestTimeoutMs;
    if (cc.op === "set-role" && cc.role === "voter") await this.waitCaughtUp(cc.id, deadline);
    for (;;) {
      const res = this.raw.proposeConfChange(cc);
      if (!res.ok) {
        if (res.error === "not the leader") throw this.notLeader();
        if (res.error.includes("in progress") && Date.now() < deadline) {
          await sleep(this.opts.tickMs);
          continue;
        }
        throw res.error.includes("in progress") ? DatabaseError.unavailable(res.error) : DatabaseError.invalid(res.error);
      }
      this.schedule();
      const outcome = await this.withDeadline(this.proposals.wait(res.index, res.term), deadline);
      if (outcome.committed) return outcome.index;
      if (!this.isLeader()) throw this.notLeader();
    }
  }

  /** A voter must hold the log before it counts toward quorums, or adding it can stall commits. */
  private async waitCaughtUp(id: NodeId, deadline: number): Promise<void> {
    const current = this.raw.raft.config.members[id];
    if (!current || current.role === "voter") return;
    for (;;) {
      if (!this.isLeader()) throw this.notLeader();
      const pr = this.raw.raft.progress.get(id);
      if (pr && pr.match >= this.raw.raft.log.committed) return;
      if (Date.now() > deadline) throw DatabaseError.unavailable(`${id} has not caught up with the log; promote it later`);
      await sleep(this.opts.tickMs);
    }
  }

  /** Hands leadership to `to` (default: the most up-to-date other voter) and waits for it. */
  async transferLeadership(to?: NodeId): Promise<NodeId> {
    if (!this.isLeader()) throw this.notLeader();
    const raft = this.raw.raft;
    const target =
      to ??
      raft
        .voters()
        .filter((v) => v !== this.id)
        .sort((a, b) => (raft.progress.get(b)?.match ?? 0) - (raft.progress.get(a)?.match ?? 0))[0];
    if (!target) throw DatabaseError.invalid("there is no other voter to hand leadership to");
    if (raft.config.members[target]?.role !== "voter") throw DatabaseError.invalid(`${target} is not a voter`);
    this.raw.transferLeadership(target);
    this.schedule();
    const deadline = Date.now() + this.opts.tickMs * this.opts.electionTicks * 3;
    while (Date.now() < deadline) {
      await sleep(this.opts.tickMs / 2);
      if (raft.leader && raft.leader !== this.id) return raft.leader;
    }
    throw DatabaseError.unavailable(`leadership transfer to ${target} did not complete`);
  }

  status(): NodeStatus & { appliedIndex: number } {
    return { ...this.raw.status(), appliedIndex: this.stateMachine.appliedIndex() };
  }

  roleOf(id: NodeId): Role | undefined {
    return this.raw.raft.config.members[id]?.role;
  }

  lookup(requestId: string): { appliedIndex: number; result: ApplyResult } | undefined {
    return this.stateMachine.lookupRequest(requestId);
  }

  /** Writes that changed data after `fromIndex`: from a window of recent ones, then live. */
  onChange(fromIndex: number, listener: (e: ChangeEvent) => void): () => void {
    return this.watch.subscribe(fromIndex, listener);
  }

  private async withDeadline<T>(p: Promise<T>, deadline: number, onTimeout?: () => void): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout?.();
        reject(DatabaseError.timeout("timed out waiting for the log; the outcome is unknown, retry with the same request id"));
      }, Math.max(0, deadline - Date.now()));
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    this.proposals.failAll("node is shutting down");
    this.reads.failAll(DatabaseError.unavailable("node is shutting down"));
    this.watch.close();
    await this.transport.close();
    this.wal.close();
    this.stateMachine.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
