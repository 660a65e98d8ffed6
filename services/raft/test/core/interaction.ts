// An in-memory environment of RawNodes for scenario tests (testdata/*.txt, run by
// scenarios.test.ts). Nothing happens on its own: time passes only on `tick`,
// messages sit on the wire until `deliver` or `stabilize`, and a node's Ready is
// carried out only on `process-ready` or `stabilize`. Randomness is fixed
// (random() = 0), so every election timeout is exactly `electionTicks`.
//
// A Ready is carried out the way sim/sim-node.ts and the real node do it:
// send `messages`, save snapshot/entries/hard state, fsync, send
// `messagesAfterPersist`, apply committed entries, report reads, advance().
// Each node has a "disk" (what restart sees) and an in-memory RawNode (what crash loses).

import { bootstrapState, joinerState } from "../../src/core/bootstrap.ts";
import type { ConfChange } from "../../src/core/confchange.ts";
import type { InitialState, RaftOptions } from "../../src/core/raft.ts";
import { RawNode } from "../../src/core/raw-node.ts";
import type { Entry, HardState, Message, NodeId, Ready, Role, SnapshotMeta } from "../../src/core/types.ts";
import * as fmt from "./format.ts";

export const ELECTION_TICKS = 10;
export const HEARTBEAT_TICKS = 2;

export interface Command {
  name: string;
  args: string[];
}

interface Disk {
  hardState: HardState;
  snapshot: SnapshotMeta;
  entries: Entry[];
}

interface Node {
  id: NodeId;
  opts: RaftOptions;
  disk: Disk;
  /** undefined while crashed. */
  raw: RawNode | undefined;
  /** The role/term/leader last printed, to report changes. */
  seen: string;
  /** A Ready whose writes are staged, waiting for `fsync` (process-ready no-fsync). */
  inFlight?: { rd: Ready; writes: ((d: Disk) => void)[] };
}

interface OnTheWire {
  /** Who put it on the wire (for transfer-leader `from` names the target, not the sender). */
  sender: NodeId;
  msg: Message;
}

const encoder = new TextEncoder();

export class Interaction {
  private readonly nodes = new Map<NodeId, Node>();
  private wire: OnTheWire[] = [];
  /** Directed links that lose everything: "n1>n2". */
  private readonly cut = new Set<string>();
  private out: string[] = [];

  /** Runs one command and returns what it printed (never with blank lines). */
  run(cmd: Command): string {
    this.out = [];
    try {
      this.dispatch(cmd);
    } catch (e) {
      this.print(`error: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.observe();
    return this.out.join("\n");
  }

  private dispatch({ name, args }: Command): void {
    const [pos, opts] = splitArgs(args);
    switch (name) {
      case "bootstrap": {
        const state = bootstrapState(pos.map((id) => ({ id, address: id })));
        for (const id of pos) this.addNode(id, state, opts);
        return;
      }
      case "add-joiner":
        for (const id of pos) this.addNode(id, joinerState(), opts);
        return;
      case "tick": {
        const n = this.live(pos[0]);
        const count = pos[1] === undefined ? 1 : int(pos[1]);
        for (let i = 0; i < count; i++) n.tick();
        return;
      }
      case "tick-election": {
        // Followers campaign after randomizedElectionTimeout ticks; a leader checks its quorum every electionTicks.
        const n = this.live(pos[0]);
        const r = n.raft;
        const timeout = r.role === "leader" ? r.opts.electionTicks : r.randomizedElectionTimeout;
        const count = Math.max(1, timeout - r.electionElapsed);
        for (let i = 0; i < count; i++) n.tick();
        this.print(`${pos[0]} ticks ${count} times`);
        return;
      }
      case "campaign":
        return this.live(pos[0]).campaign();
      case "process-ready":
        for (const id of pos.length ? pos : this.ids().filter((i) => this.nodes.get(i)!.raw && !this.nodes.get(i)!.inFlight)) {
          const n = this.node(id);
          if (n.inFlight) throw new Error(`${id} is waiting for its fsync`);
          if (!this.live(id).hasReady()) {
            if (pos.length) this.print(`> ${id} has no ready`);
            continue;
          }
          this.beginReady(n);
          if (opts.has("no-fsync")) this.print("  (fsync pending)");
          else this.finishReady(n);
        }
        return;
      case "fsync": {
        const n = this.node(pos[0]);
        if (!n.inFlight) throw new Error(`${n.id} has no fsync pending`);
        this.print(`> ${n.id} fsync completes`);
        this.finishReady(n);
        return;
      }
      case "deliver":
        return this.deliver(pos[0] ?? "*->*", opts.has("drop"), false);
      case "stabilize":
        return this.stabilize();
      case "propose":
        return this.printProposal(this.live(pos[0]).propose(encoder.encode(pos.slice(1).join(" "))));
      case "propose-conf":
        return this.printProposal(this.live(pos[0]).proposeConfChange(parseConfChange(pos.slice(1))));
      case "transfer":
        return this.live(pos[0]).transferLeadership(need(pos[1], "transfer FROM TO"));
      case "read":
        return this.live(pos[0]).readIndex(int(need(pos[1], "read NODE ID")));
      case "partition":
        return this.partition(pos);
      case "heal":
        this.cut.clear();
        return;
      case "crash": {
        const n = this.node(pos[0]);
        this.live(pos[0]);
        n.raw = undefined;
        n.seen = "down";
        const lost = n.inFlight ? "its memory and staged writes are lost" : "its memory is lost";
        n.inFlight = undefined;
        this.print(`${n.id} crashed: ${lost}, its disk has ${describeDisk(n.disk)}`);
        return;
      }
      case "restart":
        return this.start(this.node(pos[0]));
      case "compact": {
        const n = this.node(pos[0]);
        const raw = this.live(pos[0]);
        const meta = raw.compact(int(need(pos[1], "compact NODE INDEX KEEP")), int(need(pos[2], "compact NODE INDEX KEEP")));
        const first = raw.raft.log.firstIndex();
        n.disk.snapshot = structuredClone(meta);
        n.disk.entries = n.disk.entries.filter((e) => e.index >= first);
        this.print(`${n.id} snapshot at ${fmt.pos(meta.index, meta.term)}; log now starts at ${first}`);
        return;
      }
      case "status":
        this.out.push(...fmt.status(this.live(pos[0])));
        return;
      case "log": {
        const n = this.node(pos[0]);
        if (n.raw) this.out.push(...fmt.log(n.raw));
        else this.print(`${n.id} is down; its disk has ${describeDisk(n.disk)}`);
        return;
      }
      default:
        throw new Error(`unknown command "${name}"`);
    }
  }

  // ---- nodes ----

  private ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  private node(id: string | undefined): Node {
    const n = this.nodes.get(need(id, "a node id"));
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private live(id: string | undefined): RawNode {
    const n = this.node(id);
    if (!n.raw) throw new Error(`${n.id} is down`);
    return n.raw;
  }

  private addNode(id: NodeId, state: InitialState, opts: Map<string, string>): void {
    if (this.nodes.has(id)) throw new Error(`${id} exists`);
    const raftOpts: RaftOptions = { id, electionTicks: ELECTION_TICKS, heartbeatTicks: HEARTBEAT_TICKS, random: () => 0 };
    if (opts.has("max-msg-entries")) raftOpts.maxMsgEntries = int(opts.get("max-msg-entries")!);
    if (opts.has("max-inflight")) raftOpts.maxInflight = int(opts.get("max-inflight")!);
    const disk: Disk = structuredClone({ hardState: state.hardState, snapshot: state.snapshot, entries: state.entries });
    const n: Node = { id, opts: raftOpts, disk, raw: undefined, seen: "" };
    this.nodes.set(id, n);
    this.start(n);
  }

  /** (Re)starts a node from its disk. The state machine is rebuilt by re-applying committed entries. */
  private start(n: Node): void {
    if (n.raw) throw new Error(`${n.id} is already running`);
    const d = structuredClone(n.disk);
    n.raw = new RawNode(n.opts, { hardState: d.hardState, snapshot: d.snapshot, entries: d.entries });
    const r = n.raw.raft;
    n.seen = fmt.roleLine(n.raw);
    this.print(`${n.id} starts: ${n.seen} commit=${r.log.committed} last=${fmt.pos(r.log.lastIndex(), r.log.lastTerm())} config: ${fmt.config(r.config)}`);
  }

  /** Prints the role/term/leader changes since the last look. */
  private observe(): void {
    for (const n of this.nodes.values()) {
      if (!n.raw) continue;
      const now = fmt.roleLine(n.raw);
      if (now !== n.seen) this.print(`${n.id}: ${n.seen} -> ${now}`);
      n.seen = now;
    }
  }

  private print(line: string): void {
    this.out.push(line);
  }

  private printProposal(res: ReturnType<RawNode["propose"]>): void {
    if (res.ok) this.print(`proposed at ${fmt.pos(res.index, res.term)}`);
    else this.print(`refused: ${res.error}${res.leader ? ` (leader ${res.leader})` : ""}`);
  }

  // ---- the driver ----

  /** Steps 1-2 of a Ready: send `messages`, stage the writes. The node then waits for its fsync. */
  private beginReady(n: Node): void {
    const rd = n.raw!.ready();
    this.print(`> ${n.id} handles ready`);
    this.send(n.id, rd.messages);
    const lines: string[] = [];
    const writes: ((d: Disk) => void)[] = [];
    if (rd.snapshot) {
      const meta = structuredClone(rd.snapshot.meta);
      writes.push((d) => ((d.snapshot = meta), (d.entries = [])));
      lines.push(`install snapshot ${fmt.pos(meta.index, meta.term)} config: ${fmt.config(meta.config)}`);
    }
    if (rd.entries.length) {
      const entries = structuredClone(rd.entries);
      writes.push((d) => (d.entries = d.entries.filter((e) => e.index < entries[0].index).concat(entries)));
      lines.push(`save entries ${fmt.entryIds(rd.entries)}`);
    }
    if (rd.hardState) {
      const hs = { ...rd.hardState };
      writes.push((d) => (d.hardState = hs));
      lines.push(`save hard-state ${fmt.hardState(hs)}`);
    }
    for (const l of lines) this.print(`  ${l}`);
    n.inFlight = { rd, writes };
  }

  /** Steps 3-5: the fsync completes, then `messagesAfterPersist`, apply, reads, advance(). */
  private finishReady(n: Node): void {
    const { rd, writes } = n.inFlight!;
    n.inFlight = undefined;
    for (const w of writes) w(n.disk);
    if (writes.length || rd.messagesAfterPersist.length) this.print("  fsync");
    this.send(n.id, rd.messagesAfterPersist);
    if (rd.committedEntries.length) this.print(`  apply ${rd.committedEntries.map(fmt.entry).join(", ")}`);
    for (const rs of rd.readStates) this.print(`  read ${rs.requestId} may proceed once index ${rs.index} is applied`);
    for (const id of rd.droppedReads) this.print(`  read ${id} refused`);
    n.raw!.advance(rd);
  }

  private send(sender: NodeId, msgs: Message[]): void {
    for (const m of msgs) this.wire.push({ sender, msg: structuredClone(m) });
    this.printGrouped(msgs.map((m) => `  send ${fmt.message(sender, m)}`));
  }

  /** Prints lines, each distinct one once, with a count when it repeats (a leader's batched heartbeats). */
  private printGrouped(lines: string[]): void {
    const counts = new Map<string, number>();
    for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
    for (const [l, c] of counts) this.print(c > 1 ? `${l} (x${c})` : l);
  }

  /** Delivers (or drops) the messages on the wire matching `link` ("a->b", "a->*", "*->b"). */
  private deliver(link: string, drop: boolean, quiet: boolean): void {
    const [from, to] = link.split("->");
    if (to === undefined) throw new Error(`deliver: expected FROM->TO, got "${link}"`);
    const match = (w: OnTheWire) => (from === "*" || w.sender === from) && (to === "*" || w.msg.to === to);
    const batch = this.wire.filter(match);
    this.wire = this.wire.filter((w) => !match(w));
    const lines: string[] = [];
    for (const { sender, msg } of batch) {
      const target = this.nodes.get(msg.to);
      const lost = drop
        ? "dropped"
        : this.cut.has(`${sender}>${msg.to}`)
          ? "dropped: partitioned"
          : !target?.raw
            ? `dropped: ${msg.to} is down`
            : undefined;
      if (lost) lines.push(`${fmt.message(sender, msg)} (${lost})`);
      else if (!quiet) lines.push(fmt.message(sender, msg));
      if (!lost) target!.raw!.step(msg);
      if (msg.type === "snapshot") {
        // The transport tells the leader how the transfer went, as the real one does.
        const leader = this.nodes.get(sender)?.raw;
        leader?.reportSnapshot(msg.to, !lost);
        lines.push(`${sender} learns the snapshot to ${msg.to} ${lost ? "failed" : "arrived"}`);
      }
    }
    this.printGrouped(lines);
  }

  /** Ready, deliver, repeat, until no node has a Ready and nothing is on the wire. */
  private stabilize(): void {
    for (let round = 0; round < 100; round++) {
      let busy = false;
      for (const n of this.nodes.values()) {
        if (n.inFlight) {
          busy = true;
          this.print(`> ${n.id} fsync completes`);
          this.finishReady(n);
        }
        if (n.raw?.hasReady()) {
          busy = true;
          this.beginReady(n);
          this.finishReady(n);
        }
      }
      if (this.wire.length) {
        busy = true;
        // Delivered messages were printed when sent; only losses are worth a line.
        this.deliver("*->*", false, true);
      }
      this.observe();
      if (!busy) return;
    }
    throw new Error("did not stabilize within 100 rounds");
  }

  private partition(args: string[]): void {
    this.cut.clear();
    const groups: string[][] = [[]];
    for (const a of args) {
      if (a === "|") groups.push([]);
      else groups[groups.length - 1].push(this.node(a).id);
    }
    for (const [i, g] of groups.entries()) {
      for (const h of groups.slice(i + 1)) {
        for (const a of g) for (const b of h) this.cut.add(`${a}>${b}`).add(`${b}>${a}`);
      }
    }
  }
}

function describeDisk(d: Disk): string {
  const last = d.entries.length ? d.entries[d.entries.length - 1] : undefined;
  const snap = d.snapshot.index ? `snapshot ${fmt.pos(d.snapshot.index, d.snapshot.term)}, ` : "";
  return `${snap}entries through ${last ? fmt.pos(last.index, last.term) : "none"}, ${fmt.hardState(d.hardState)}`;
}

const FLAGS = new Set(["drop", "no-fsync"]);
const OPTIONS = new Set(["max-msg-entries", "max-inflight"]);

/** Positional arguments, and options: key=value or a bare flag. */
function splitArgs(args: string[]): [string[], Map<string, string>] {
  const pos: string[] = [];
  const opts = new Map<string, string>();
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq > 0 && OPTIONS.has(a.slice(0, eq))) opts.set(a.slice(0, eq), a.slice(eq + 1));
    else if (eq > 0) throw new Error(`unknown option "${a}"`);
    else if (FLAGS.has(a)) opts.set(a, "");
    else pos.push(a);
  }
  return [pos, opts];
}

/** `set-role n4 standby [ADDRESS]` or `remove n3`. A new node's address defaults to its id. */
function parseConfChange(args: string[]): ConfChange {
  const [op, id, role, address] = args;
  if (op === "remove") return { op, id: need(id, "remove ID") };
  if (op === "set-role") return { op, id: need(id, "set-role ID ROLE"), role: need(role, "set-role ID ROLE") as Role, address: address ?? id };
  throw new Error(`unknown conf change "${op}"`);
}

function int(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n)) throw new Error(`not an integer: "${s}"`);
  return n;
}

function need(s: string | undefined, what: string): string {
  if (s === undefined) throw new Error(`missing argument: ${what}`);
  return s;
}
