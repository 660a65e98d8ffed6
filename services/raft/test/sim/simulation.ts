// A deterministic simulation of a Raft group: nodes, an unreliable network, disks
// that lose unsynced writes, clients and a fault schedule, all driven by one seed
// in virtual time. Invariants are checked as it runs; at the end the faults heal,
// the group must converge, and the client history must be linearizable.

import { bootstrapState, joinerState } from "../../src/core/bootstrap.ts";
import type { Message, NodeId } from "../../src/core/types.ts";
import { checkOperations, kvModel, renderCheckResult } from "../support/linearizability.ts";
import { Clients } from "./clients.ts";
import { EventQueue } from "./event-queue.ts";
import { Faults } from "./faults.ts";
import { Invariants, InvariantViolation } from "./invariants.ts";
import { MemoryDisk } from "./memory-disk.ts";
import { Prng } from "./prng.ts";
import { encodeKvSnapshot, SimNode } from "./sim-node.ts";
import type { NodeHooks } from "./sim-node.ts";

export interface SimOptions {
  seed: number;
  founders?: number;
  /** Virtual milliseconds of client load under faults before healing. */
  chaosMs?: number;
  clients?: number;
  keys?: number;
  /** Apply this many entries between snapshots (small, to exercise snapshot installs). */
  snapshotEvery?: number;
  faults?: boolean;
  membership?: boolean;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  error?: string;
  trace: string[];
  stats: Record<string, number>;
}

export type SimEvent =
  | { kind: "tick"; node: NodeId; incarnation: number }
  | { kind: "deliver"; msg: Message; data?: Uint8Array }
  | { kind: "fsync"; node: NodeId; incarnation: number }
  | { kind: "snapshot-status"; from: NodeId; to: NodeId; ok: boolean }
  | { kind: "restart"; node: NodeId }
  | { kind: "client"; client: number }
  | { kind: "client-timeout"; client: number; op: number }
  | { kind: "fault" }
  | { kind: "call"; run: () => void };

const TICK_MS = 10;

export class Simulation {
  readonly rng: Prng;
  readonly queue = new EventQueue<SimEvent>();
  readonly nodes = new Map<NodeId, SimNode>();
  readonly incarnation = new Map<NodeId, number>();
  readonly invariants = new Invariants();
  readonly clients: Clients;
  readonly faults: Faults;
  /** Directed links that drop everything ("a>b"). */
  readonly cut = new Set<string>();
  /** Per-node clock rate: a tick every TICK_MS * skew virtual ms. */
  readonly skew = new Map<NodeId, number>();
  dropRate = 0;
  dupRate = 0;
  maxDelay = 3;
  nextNodeNumber = 1;
  readonly stats: Record<string, number> = { delivered: 0, dropped: 0, crashes: 0, elections: 0, snapshotsSent: 0 };
  private readonly trace: string[] = [];
  private readonly hooks: NodeHooks;
  healed = false;
  /** Nodes that crash instead of completing their next fsync (writes staged, maybe acknowledged by a bug). */
  readonly crashAtNextFsync = new Set<NodeId>();

  constructor(readonly opts: Required<SimOptions>) {
    this.rng = new Prng(opts.seed);
    this.hooks = this.makeHooks();
    this.clients = new Clients(this, opts.clients, opts.keys);
    this.faults = new Faults(this);
  }

  log(line: string): void {
    this.trace.push(`${this.queue.now.toFixed(2).padStart(9)} ${line}`);
    if (this.trace.length > 400) this.trace.splice(0, this.trace.length - 300);
  }

  newNodeId(): NodeId {
    return `n${this.nextNodeNumber++}`;
  }

  addNode(id: NodeId, disk: MemoryDisk): SimNode {
    const node = new SimNode(
      id,
      disk,
      { electionTicks: 10, heartbeatTicks: 2, random: () => this.rng.next(), maxMsgEntries: 16, maxInflight: 4 },
      this.hooks,
      this.opts.snapshotEvery,
    );
    this.nodes.set(id, node);
    this.skew.set(id, 1);
    this.startNode(node);
    return node;
  }

  startNode(node: SimNode): void {
    node.start();
    const inc = (this.incarnation.get(node.id) ?? 0) + 1;
    this.incarnation.set(node.id, inc);
    this.invariants.recordState(node.id, node.appliedIndex, stateKey(node.kv));
    this.queue.schedule(this.queue.now + this.rng.next() * TICK_MS, { kind: "tick", node: node.id, incarnation: inc });
    this.log(`${node.id} starts (term ${node.raw!.raft.term}, commit ${node.raw!.raft.log.committed})`);
  }

  crashNode(node: SimNode): void {
    if (!node.alive) return;
    const keep = this.rng.int(0, node.disk.stagedCount());
    node.crash(keep);
    this.incarnation.set(node.id, (this.incarnation.get(node.id) ?? 0) + 1);
    this.stats.crashes++;
    this.log(`${node.id} crashes (kept ${keep} staged writes)`);
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      const r = n.raw?.raft;
      if (r?.role === "leader" && (!best || r.term > best.raw!.raft.term)) best = n;
    }
    return best;
  }

  liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  private makeHooks(): NodeHooks {
    return {
      send: (from, msgs, snapshotData) => {
        for (const m of msgs) this.sendMessage(from, m, snapshotData);
      },
      applied: (node, entry, result) => {
        this.invariants.appliedEntry(node.id, entry, stateKey(node.kv));
        this.clients.applied(node, entry, result);
      },
      readReady: (node, requestId, kv) => this.clients.readReady(node, requestId, kv),
      readDropped: (node, requestId) => this.clients.readDropped(node, requestId),
      becameLeader: (node, term) => {
        this.stats.elections++;
        this.log(`${node.id} becomes leader of term ${term}`);
        this.invariants.becameLeader(node.id, term, node.raw!.raft.log);
      },
      persisted: (node, rd) => {
        const raft = node.raw!.raft;
        if (raft.role === "leader") this.invariants.leaderAppended(node.id, raft.term, rd.entries);
        this.invariants.wroteEntries(node.id, rd.entries);
      },
      installedSnapshot: (node, index) => {
        this.log(`${node.id} installed snapshot at ${index}`);
        this.invariants.recordState(node.id, index, stateKey(node.kv));
      },
    };
  }

  private sendMessage(from: NodeId, m: Message, snapshotData: (index: number) => Uint8Array | undefined): void {
    let data: Uint8Array | undefined;
    if (m.type === "snapshot") {
      this.stats.snapshotsSent++;
      data = snapshotData(m.snapshot!.meta.index);
    }
    const lost =
      this.cut.has(`${from}>${m.to}`) || !this.nodes.get(m.to)?.alive || this.rng.chance(this.dropRate) || (m.type === "snapshot" && !data);
    if (lost) {
      this.stats.dropped++;
      if (m.type === "snapshot") this.queue.schedule(this.queue.now + 1, { kind: "snapshot-status", from, to: m.to, ok: false });
      else if (this.cut.has(`${from}>${m.to}`) && this.rng.chance(0.3)) this.nodes.get(from)?.raw?.reportUnreachable(m.to);
      return;
    }
    const copies = this.rng.chance(this.dupRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.queue.schedule(this.queue.now + 0.1 + this.rng.next() * this.maxDelay, { kind: "deliver", msg: m, data });
    }
  }

  /** Takes a node's next Ready if it is idle; its fsync completes a little later. */
  pump(node: SimNode): void {
    if (node.beginReady()) {
      const delay = this.rng.chance(0.05) ? 2 + this.rng.next() * 10 : 0.05 + this.rng.next() * 0.5;
      this.queue.schedule(this.queue.now + delay, { kind: "fsync", node: node.id, incarnation: this.incarnation.get(node.id)! });
    }
  }

  handle(ev: SimEvent): void {
    switch (ev.kind) {
      case "tick": {
        const node = this.nodes.get(ev.node)!;
        if (this.incarnation.get(ev.node) !== ev.incarnation || !node.alive) return;
        node.raw!.tick();
        this.pump(node);
        this.queue.schedule(this.queue.now + TICK_MS * this.skew.get(ev.node)!, ev);
        return;
      }
      case "deliver": {
        const node = this.nodes.get(ev.msg.to);
        if (!node?.alive || this.cut.has(`${ev.msg.from}>${ev.msg.to}`)) {
          this.stats.dropped++;
          if (ev.msg.type === "snapshot") this.queue.schedule(this.queue.now + 1, { kind: "snapshot-status", from: ev.msg.from, to: ev.msg.to, ok: false });
          return;
        }
        this.stats.delivered++;
        node.receive(ev.msg, ev.data);
        if (ev.msg.type === "snapshot") this.queue.schedule(this.queue.now + 1, { kind: "snapshot-status", from: ev.msg.from, to: ev.msg.to, ok: true });
        this.pump(node);
        return;
      }
      case "fsync": {
        const node = this.nodes.get(ev.node)!;
        if (this.incarnation.get(ev.node) !== ev.incarnation || !node.alive) return;
        if (this.crashAtNextFsync.delete(ev.node)) {
          this.crashNode(node);
          this.queue.schedule(this.queue.now + 10 + this.rng.next() * 300, { kind: "restart", node: node.id });
          return;
        }
        node.finishReady();
        this.pump(node);
        return;
      }
      case "snapshot-status": {
        const node = this.nodes.get(ev.from);
        if (!node?.alive) return;
        node.raw!.reportSnapshot(ev.to, ev.ok);
        this.pump(node);
        return;
      }
      case "restart": {
        const node = this.nodes.get(ev.node)!;
        if (!node.alive && !this.faults.removed.has(node.id)) this.startNode(node);
        return;
      }
      case "client":
        return this.clients.act(ev.client);
      case "client-timeout":
        return this.clients.timeout(ev.client, ev.op);
      case "call":
        return ev.run();
      case "fault":
        if (!this.healed) {
          this.faults.inject();
          this.queue.schedule(this.queue.now + 20 + this.rng.next() * 250, { kind: "fault" });
        }
        return;
    }
  }

  runUntil(t: number, stop?: () => boolean): void {
    let steps = 0;
    while (this.queue.size > 0) {
      const next = this.queue.pop()!;
      if (next.at > t) {
        this.queue.schedule(next.at, next.event);
        this.queue.now = t;
        return;
      }
      this.handle(next.event);
      if (++steps % 200 === 0) this.checkLogs();
      if (stop?.()) return;
    }
  }

  checkLogs(): void {
    const live = this.liveNodes();
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) {
        Invariants.checkLogMatching(
          { id: live[i].id, log: live[i].raw!.raft.log },
          { id: live[j].id, log: live[j].raw!.raft.log },
        );
      }
    }
  }

  /** Every running member has applied everything the leader committed, and a new write commits. */
  converged(): boolean {
    const leader = this.leader();
    if (!leader) return false;
    const raft = leader.raw!.raft;
    if (raft.log.term(raft.log.committed) !== raft.term) return false;
    for (const id of Object.keys(raft.config.members)) {
      const n = this.nodes.get(id);
      if (!n?.alive || raft.config.members[id].role === "spare") continue;
      if (n.appliedIndex !== raft.log.committed || n.raw!.raft.log.lastIndex() !== raft.log.lastIndex()) return false;
    }
    return !this.clients.busy();
  }

  run(): SimResult {
    const o = this.opts;
    try {
      const founders = Array.from({ length: o.founders }, () => this.newNodeId());
      const initial = bootstrapState(founders.map((id) => ({ id, address: id })));
      for (const id of founders) {
        const disk = new MemoryDisk({
          hardState: initial.hardState,
          snapshot: { meta: initial.snapshot, data: encodeKvSnapshot(new Map()) },
          entries: initial.entries,
        });
        this.addNode(id, disk);
      }
      this.clients.start();
      if (o.faults || o.membership) this.queue.schedule(50, { kind: "fault" });
      this.runUntil(o.chaosMs);

      // Heal: no more faults, every member back up; the group must converge.
      this.healed = true;
      this.faults.healAll();
      this.log("--- healed ---");
      this.clients.stopAfterCurrent();
      const deadline = o.chaosMs + 20_000;
      this.runUntil(deadline, () => this.converged());
      if (!this.converged()) throw new InvariantViolation(`no convergence within 20 s of healing: ${this.describe()}`);
      // Final linearizable reads pin down every acknowledged write.
      this.clients.finalReads();
      this.runUntil(this.queue.now + 5_000, () => this.clients.finalReadsDone());
      if (!this.clients.finalReadsDone()) throw new InvariantViolation(`final reads did not complete: ${this.describe()}`);
      this.runUntil(this.queue.now + 5_000, () => this.converged());
      this.checkLogs();
      const states = new Set(this.liveNodes().filter((n) => this.isMember(n.id)).map((n) => stateKey(n.kv)));
      if (states.size !== 1) throw new InvariantViolation(
          `replicas differ after convergence: ${this.liveNodes().map((n) => `${n.id}@${n.appliedIndex}=${stateKey(n.kv)}`).join(" | ")}`,
        );

      const check = checkOperations(kvModel, this.clients.history, { timeoutMs: 20_000 });
      if (check.result !== "ok") {
        throw new InvariantViolation(`history is ${check.result}:\n${renderCheckResult(kvModel, check)}`);
      }
      this.stats.operations = this.clients.history.length;
      this.stats.acknowledged = this.clients.history.filter((h) => h.return !== Infinity).length;
      return { seed: o.seed, ok: true, trace: [], stats: this.stats };
    } catch (e) {
      const err = e as Error;
      const message = e instanceof InvariantViolation ? err.message : `${err.stack ?? err.message}`;
      return { seed: o.seed, ok: false, error: message, trace: this.trace.slice(-200), stats: this.stats };
    }
  }

  isMember(id: NodeId): boolean {
    const leader = this.leader();
    const m = leader?.raw!.raft.config.members[id];
    return m !== undefined && m.role !== "spare";
  }

  describe(): string {
    return [...this.nodes.values()]
      .map((n) => {
        if (!n.raw) return `${n.id}:down`;
        const r = n.raw.raft;
        return `${n.id}:${r.role}/t${r.term}/c${r.log.committed}/a${n.appliedIndex}/l${r.log.lastIndex()}/s${r.log.snapshotIndex}/${Object.entries(r.config.members).map(([k, v]) => k + "=" + v.role[0]).join(",")}${r.role === "leader" ? " " + JSON.stringify(n.raw.status().progress) : ""}`;
      })
      .join(" ");
  }

  joinerDisk(): MemoryDisk {
    const j = joinerState();
    return new MemoryDisk({ hardState: j.hardState, snapshot: { meta: j.snapshot, data: encodeKvSnapshot(new Map()) }, entries: [] });
  }
}

export function stateKey(kv: Map<string, string>): string {
  return JSON.stringify([...kv].sort());
}

export function runSimulation(opts: SimOptions): SimResult {
  const full: Required<SimOptions> = {
    founders: 3,
    chaosMs: 3_000,
    clients: 4,
    keys: 3,
    snapshotEvery: 40,
    faults: true,
    membership: true,
    ...opts,
  };
  return new Simulation(full).run();
}
