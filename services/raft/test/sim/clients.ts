// Simulated clients: each runs one key-value operation at a time against whichever
// node it picks, retries refusals, and records what it observed for the
// linearizability check. A write whose fate the client cannot learn (its node
// crashed, the client gave up) is recorded with an unknown outcome.

import type { Entry, NodeId } from "../../src/core/types.ts";
import type { KvInput, KvOutput, Operation } from "../support/linearizability.ts";
import type { KvResult, SimNode } from "./sim-node.ts";
import { encodeKv } from "./sim-node.ts";
import type { Simulation } from "./simulation.ts";

const TIMEOUT_MS = 500;

interface Op {
  id: number;
  client: number;
  input: KvInput;
  call: number;
  /** A proposal whose fate is not known yet (at most one: retries wait for a verdict). */
  proposal?: { node: NodeId; index: number; term: number };
  readId?: number;
  readNode?: NodeId;
  done: boolean;
  /** Final reads retry until they succeed rather than time out. */
  final: boolean;
}

export class Clients {
  readonly history: Operation<KvInput, KvOutput>[] = [];
  private current = new Map<number, Op>();
  private nextOpId = 1;
  private nextReadId = 1;
  private counter = 0;
  private stopping = false;
  private leaderHint: NodeId | undefined;
  private finalOps: Op[] = [];

  constructor(
    private readonly sim: Simulation,
    private readonly count: number,
    private readonly keys: number,
  ) {}

  start(): void {
    for (let c = 0; c < this.count; c++) this.sim.queue.schedule(this.sim.rng.next() * 20, { kind: "client", client: c });
  }

  busy(): boolean {
    return [...this.current.values()].some((op) => !op.done);
  }

  stopAfterCurrent(): void {
    this.stopping = true;
  }

  act(client: number): void {
    let op = this.current.get(client);
    if (!op || op.done) {
      if (this.stopping && !(op?.final ?? false)) return;
      op = this.newOp(client);
      this.current.set(client, op);
      this.sim.queue.schedule(this.sim.queue.now + TIMEOUT_MS, { kind: "client-timeout", client, op: op.id });
    }
    this.attempt(op);
  }

  private newOp(client: number): Op {
    const rng = this.sim.rng;
    const key = `k${rng.int(1, this.keys)}`;
    const value = `v${++this.counter}`;
    const roll = rng.next();
    let input: KvInput;
    if (roll < 0.45) input = { op: "put", key, value };
    else if (roll < 0.8) input = { op: "get", key };
    else input = { op: "cas", key, expected: rng.chance(0.5) ? null : `v${rng.int(Math.max(1, this.counter - 6), this.counter)}`, value };
    return { id: this.nextOpId++, client, input, call: this.sim.queue.now, done: false, final: false };
  }

  private pickNode(): SimNode | undefined {
    const live = this.sim.liveNodes();
    if (live.length === 0) return undefined;
    const hinted = this.leaderHint ? this.sim.nodes.get(this.leaderHint) : undefined;
    if (hinted?.alive && this.sim.rng.chance(0.8)) return hinted;
    return this.sim.rng.pick(live);
  }

  private attempt(op: Op): void {
    if (op.done || op.proposal || op.readId !== undefined) return;
    const node = this.pickNode();
    if (!node) return this.retryLater(op);
    const raw = node.raw!;
    if (op.input.op === "get") {
      op.readId = this.nextReadId++;
      op.readNode = node.id;
      raw.readIndex(op.readId);
      this.sim.pump(node);
      return;
    }
    const res = raw.propose(encodeKv(op.input));
    if (!res.ok) {
      this.leaderHint = res.leader || undefined;
      return this.retryLater(op);
    }
    this.leaderHint = node.id;
    op.proposal = { node: node.id, index: res.index, term: res.term };
    this.sim.pump(node);
  }

  private retryLater(op: Op): void {
    this.sim.queue.schedule(this.sim.queue.now + 2 + this.sim.rng.next() * 15, { kind: "client", client: op.client });
  }

  private finish(op: Op, output: KvOutput | undefined): void {
    op.done = true;
    this.history.push({
      clientId: op.client,
      input: op.input,
      output,
      call: op.call,
      return: output === undefined ? Infinity : this.sim.queue.now,
    });
    if (!op.final) this.sim.queue.schedule(this.sim.queue.now + this.sim.rng.next() * 30, { kind: "client", client: op.client });
  }

  applied(node: SimNode, entry: Entry, result: KvResult | undefined): void {
    for (const op of this.current.values()) {
      const p = op.proposal;
      if (op.done || !p || p.node !== node.id || p.index !== entry.index) continue;
      op.proposal = undefined;
      if (entry.term === p.term && result) {
        this.finish(op, { ok: result.ok });
      } else {
        // Another entry was committed at our index: ours never will be. Try again.
        this.retryLater(op);
      }
    }
  }

  readReady(node: SimNode, requestId: number, kv: Map<string, string>): void {
    for (const op of this.current.values()) {
      if (op.done || op.readId !== requestId || op.readNode !== node.id || op.input.op !== "get") continue;
      op.readId = undefined;
      this.finish(op, { value: kv.get(op.input.key) ?? null });
    }
  }

  readDropped(node: SimNode, requestId: number): void {
    for (const op of this.current.values()) {
      if (op.done || op.readId !== requestId || op.readNode !== node.id) continue;
      op.readId = undefined;
      this.retryLater(op);
    }
  }

  timeout(client: number, opId: number): void {
    const op = this.current.get(client);
    if (!op || op.id !== opId || op.done) return;
    if (op.final) {
      // Final reads must eventually succeed: abandon the stuck attempt and retry.
      op.readId = undefined;
      this.sim.queue.schedule(this.sim.queue.now + TIMEOUT_MS, { kind: "client-timeout", client, op: op.id });
      this.attempt(op);
      return;
    }
    if (op.proposal) {
      this.finish(op, undefined); // the write may or may not take effect
    } else {
      // Nothing of this op can take effect any more; it never happened.
      op.done = true;
      this.sim.queue.schedule(this.sim.queue.now + this.sim.rng.next() * 30, { kind: "client", client: op.client });
    }
  }

  /** After convergence: one linearizable read per key. */
  finalReads(): void {
    for (let k = 1; k <= this.keys; k++) {
      const client = 1000 + k;
      const op: Op = { id: this.nextOpId++, client, input: { op: "get", key: `k${k}` }, call: this.sim.queue.now, done: false, final: true };
      this.current.set(client, op);
      this.finalOps.push(op);
      this.sim.queue.schedule(this.sim.queue.now + TIMEOUT_MS, { kind: "client-timeout", client, op: op.id });
      this.attempt(op);
    }
  }

  finalReadsDone(): boolean {
    return this.finalOps.length > 0 && this.finalOps.every((op) => op.done);
  }
}
