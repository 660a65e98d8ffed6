// The fault schedule: each call injects one randomly chosen fault or operator
// action. Everything is undone by healAll() before the convergence check.

import type { NodeId, Role } from "../../src/core/types.ts";
import type { Simulation } from "./simulation.ts";

const MAX_NODES = 7;

export class Faults {
  /** Nodes removed from the group: never restarted, their ids never reused. */
  readonly removed = new Set<NodeId>();
  /** Nodes whose removal was proposed: never added back, as ids are never reused. */
  private readonly removing = new Set<NodeId>();

  constructor(private readonly sim: Simulation) {}

  inject(): void {
    const sim = this.sim;
    const opts = sim.opts;
    const choices: (() => void)[] = [];
    if (opts.faults) {
      choices.push(
        () => this.partition(),
        () => this.isolateLeader(),
        () => this.cutRandomLinks(),
        () => this.healNetwork(),
        () => this.healNetwork(),
        () => this.crashRandom(),
        () => this.crashLeader(),
        () => this.crashDuringFsync(),
        () => this.crashDuringFsync(),
        () => this.networkWeather(),
        () => this.clockSkew(),
      );
    }
    if (opts.membership) {
      choices.push(
        () => this.membershipChange(),
        () => this.membershipChange(),
        () => this.transferLeadership(),
      );
    }
    if (choices.length) sim.rng.pick(choices)();
  }

  healNetwork(): void {
    this.sim.cut.clear();
    this.sim.log("network heals");
  }

  healAll(): void {
    const sim = this.sim;
    this.healNetwork();
    sim.crashAtNextFsync.clear();
    sim.dropRate = 0;
    sim.dupRate = 0;
    sim.maxDelay = 3;
    for (const id of sim.skew.keys()) sim.skew.set(id, 1);
    for (const n of sim.nodes.values()) {
      if (!n.alive && !this.removed.has(n.id)) sim.startNode(n);
    }
  }

  private cutBetween(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) {
      this.sim.cut.add(`${x}>${y}`);
      this.sim.cut.add(`${y}>${x}`);
    }
  }

  private partition(): void {
    const ids = this.sim.rng.shuffle([...this.sim.nodes.keys()]);
    const k = this.sim.rng.int(1, Math.max(1, ids.length - 1));
    this.sim.cut.clear();
    this.cutBetween(ids.slice(0, k), ids.slice(k));
    this.sim.log(`partition ${ids.slice(0, k).join(",")} | ${ids.slice(k).join(",")}`);
  }

  private isolateLeader(): void {
    const leader = this.sim.leader();
    if (!leader) return;
    const others = [...this.sim.nodes.keys()].filter((id) => id !== leader.id);
    this.cutBetween([leader.id], others);
    this.sim.log(`isolate leader ${leader.id}`);
  }

  /** Asymmetric faults: each directed link is cut independently (rings and bridges included). */
  private cutRandomLinks(): void {
    const ids = [...this.sim.nodes.keys()];
    this.sim.cut.clear();
    for (const a of ids) for (const b of ids) if (a !== b && this.sim.rng.chance(0.25)) this.sim.cut.add(`${a}>${b}`);
    this.sim.log(`cut links ${[...this.sim.cut].join(" ")}`);
  }

  private crash(id: NodeId): void {
    const node = this.sim.nodes.get(id)!;
    this.sim.crashNode(node);
    this.sim.queue.schedule(this.sim.queue.now + 10 + this.sim.rng.next() * 600, { kind: "restart", node: id });
  }

  private crashRandom(): void {
    const live = this.sim.liveNodes();
    if (live.length) this.crash(this.sim.rng.pick(live).id);
  }

  /** The sharpest crash: between staging a Ready's writes and their fsync. */
  private crashDuringFsync(): void {
    const live = this.sim.liveNodes();
    if (!live.length) return;
    const id = this.sim.rng.pick(live).id;
    this.sim.crashAtNextFsync.add(id);
    this.sim.log(`${id} will crash during its next fsync`);
  }

  private crashLeader(): void {
    const leader = this.sim.leader();
    if (leader) this.crash(leader.id);
  }

  private networkWeather(): void {
    const sim = this.sim;
    sim.dropRate = sim.rng.pick([0, 0, 0.05, 0.2]);
    sim.dupRate = sim.rng.pick([0, 0.05, 0.2]);
    sim.maxDelay = sim.rng.pick([1, 3, 10, 30]);
    sim.log(`network drop=${sim.dropRate} dup=${sim.dupRate} delay<=${sim.maxDelay}ms`);
  }

  private clockSkew(): void {
    const sim = this.sim;
    const id = sim.rng.pick([...sim.nodes.keys()]);
    const skew = sim.rng.pick([0.5, 1, 1, 2]);
    sim.skew.set(id, skew);
    sim.log(`${id} clock runs at ${1 / skew}x`);
  }

  private transferLeadership(): void {
    const leader = this.sim.leader();
    if (!leader) return;
    const raft = leader.raw!.raft;
    const voters = raft.voters().filter((id) => id !== leader.id);
    if (!voters.length) return;
    const to = this.sim.rng.pick(voters);
    leader.raw!.transferLeadership(to);
    this.sim.log(`transfer leadership ${leader.id} -> ${to}`);
    this.sim.pump(leader);
  }

  /** An operator action: add a standby, promote, demote or remove a member. */
  private membershipChange(): void {
    const sim = this.sim;
    const leader = sim.leader();
    if (!leader) return;
    const raw = leader.raw!;
    const members = raw.raft.config.members;
    const ids = Object.keys(members);
    const action = sim.rng.pick(["add", "promote", "demote", "remove"] as const);
    let change: { id: NodeId; role?: Role } | undefined;
    if (action === "add") {
      // Reuse a started node that never made it into the group, else start a fresh one.
      const idle = [...sim.nodes.values()].find((n) => n.alive && !members[n.id] && !this.removing.has(n.id));
      if (idle) change = { id: idle.id, role: "standby" };
      else if (sim.nodes.size - this.removed.size < MAX_NODES) {
        const id = sim.newNodeId();
        sim.addNode(id, sim.joinerDisk());
        change = { id, role: "standby" };
      }
    } else if (action === "promote") {
      const standbys = ids.filter((id) => members[id].role === "standby" && !this.removing.has(id));
      if (standbys.length && raw.raft.voters().length < 5) change = { id: sim.rng.pick(standbys), role: "voter" };
    } else if (action === "demote") {
      const voters = ids.filter((id) => members[id].role === "voter" && id !== leader.id);
      if (voters.length) change = { id: sim.rng.pick(voters), role: "standby" };
    } else {
      const candidates = ids.filter((id) => id !== leader.id);
      if (candidates.length) change = { id: sim.rng.pick(candidates) };
    }
    if (!change) return;
    const res = change.role
      ? raw.proposeConfChange({ op: "set-role", id: change.id, role: change.role, address: change.id })
      : raw.proposeConfChange({ op: "remove", id: change.id });
    sim.log(`${leader.id} proposes ${change.role ? `${change.id} as ${change.role}` : `removal of ${change.id}`}: ${res.ok ? `index ${res.index}` : res.error}`);
    if (res.ok && !change.role) {
      this.removing.add(change.id);
      this.removeWhenCommitted(change.id, res.index);
    }
    sim.pump(leader);
  }

  /** A removed node's process is stopped once the removal is committed (as an operator would). */
  private removeWhenCommitted(id: NodeId, index: number): void {
    const sim = this.sim;
    const check = () => {
      if (sim.invariants.maxCommitted >= index) {
        const leader = sim.leader();
        if (leader && !leader.raw!.raft.config.members[id]) {
          this.removed.add(id);
          const n = sim.nodes.get(id);
          if (n?.alive && sim.rng.chance(0.7)) sim.crashNode(n);
          sim.log(`${id} is removed`);
        }
        return;
      }
      if (!sim.healed) setTimeoutVirtual();
    };
    const setTimeoutVirtual = () => sim.queue.schedule(sim.queue.now + 50, { kind: "call", run: check });
    setTimeoutVirtual();
  }
}
