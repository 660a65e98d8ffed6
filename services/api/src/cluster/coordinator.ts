// The coordinator: the cluster's background work, run by the member whose database
// node is the Raft leader and fenced by its term. Every member runs one; only the
// leader's acts. Each round it
//   - claims the coordinator row for its term (a deposed coordinator's writes fail),
//   - heartbeats every member and records who answered,
//   - applies the next database role change the rebalancer asks for,
//   - hands leadership over when its own member is leaving or evacuated,
//   - cancels expired join and trust tokens,
//   - executes recorded evacuation and restore plans (evacuation/runner.ts).
import * as grpc from "@grpc/grpc-js";
import { DatabaseClientError, type ClusterDatabaseClient, type ExecPrecondition } from "../../../raft/src/node/database-client.ts";
import { readStoredConfig } from "../config.ts";
import { finished, listOperations, STATUS, stillRunning, updateStatements } from "../operations/store.ts";
import { listMembers, MEMBER_STATE, PROTO_ROLE, roleMembers, type MemberRow } from "./members.ts";
import type { MemberClients } from "./member-service.ts";
import { nextRoleChange } from "./rebalance.ts";
import { clusterSettings } from "./settings.ts";

export interface CoordinatorOptions {
  nodeId: string;
  /** This member's own database node address (status is asked there). */
  address: string;
  db: ClusterDatabaseClient;
  members: MemberClients;
  /** How often a round runs; heartbeats go out every round. */
  intervalMs?: number;
  /** Executes the recorded evacuation and restore plans (claimed per term). */
  evacuations?: { tick(term: number, fence: ExecPrecondition): Promise<void> };
  log?: (line: string) => void;
}


export class Coordinator {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** poke() during a loop's round: run another right after it. */
  private again = false;
  private looping = false;
  private fencedTerm = 0;
  private closed = false;
  private readonly intervalMs: number;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: CoordinatorOptions) {
    this.intervalMs = opts.intervalMs ?? 1_000;
    this.log = opts.log ?? ((line) => process.stdout.write(`coordinator: ${line}\n`));
  }

  start(): void {
    this.timer = setTimeout(() => void this.loop(), 0);
  }

  /**
   * Runs a round now rather than at the next interval: a plan was just recorded (an
   * evacuation waits for no timer). A round in progress is followed by another.
   */
  poke(): void {
    if (this.closed || !this.timer) return;
    if (this.looping) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.loop(), 0);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private async loop(): Promise<void> {
    if (this.closed) return;
    this.looping = true;
    do {
      this.again = false;
      await this.round().catch((e: unknown) => this.log(`round failed: ${e instanceof Error ? e.message : String(e)}`));
    } while (this.again && !this.closed);
    this.looping = false;
    if (!this.closed) this.timer = setTimeout(() => void this.loop(), this.intervalMs);
  }

  /** One round; a no-op unless this member's node leads. Exposed for tests. */
  async round(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const status = await this.opts.db.status(this.opts.address);
      if (status.leader !== this.opts.nodeId) {
        this.fencedTerm = 0;
        return;
      }
      if (this.fencedTerm !== status.term && !(await this.claim(status.term))) return;
      const fence = this.fence(status.term);
      const settings = clusterSettings(await readStoredConfig(this.opts.db));
      const members = await listMembers(this.opts.db, { pending: true });
      // A member being evacuated hands its leadership over (below) before anything runs
      // here: its successor executes the plan without being interrupted by a handover.
      // Plans start before this round's heartbeats: a recorded evacuation waits for nothing.
      const self = members.find((m) => m.nodeId === this.opts.nodeId);
      const selfEvacuated = self?.state === MEMBER_STATE.evacuated;
      if (!selfEvacuated || members.length === 1) {
        await this.opts.evacuations?.tick(status.term, fence).catch((e: unknown) => this.log(`evacuations: ${e instanceof Error ? e.message : String(e)}`));
      }
      const beat = await this.heartbeat(members, status.term, fence);
      if (self && selfEvacuated && members.length > 1) {
        this.log(`${self.name} is evacuated: handing the leadership over`);
        await this.opts.db.transferLeadership().catch((e: unknown) => this.log(`leadership transfer failed: ${String(e)}`));
        return;
      }

      // Roles, with this round's heartbeats (the rows as just written, not read again).
      const rows = members
        .filter((m) => m.state !== MEMBER_STATE.pending)
        .map((m) => (beat.answered.has(m.nodeId) ? { ...m, heartbeat: beat.at } : m));
      const candidates = roleMembers(rows, status, settings.offlineThresholdMs, { alwaysOnline: this.opts.nodeId });
      const change = nextRoleChange(candidates, settings);
      if (change) {
        const name = rows.find((m) => m.nodeId === change.id)?.name ?? change.id;
        this.log(`${name}: ${change.from} -> ${change.to} (${change.reason})`);
        await this.opts.db.assignRole(change.id, PROTO_ROLE[change.to]).catch((e: unknown) => this.log(`role change of ${name} failed: ${e instanceof Error ? e.message : String(e)}`));
      }
      await this.expireTokens(fence);
    } finally {
      this.running = false;
    }
  }

  /** Takes the coordinator row for `term`; false when a newer coordinator holds it. */
  private async claim(term: number): Promise<boolean> {
    try {
      await this.opts.db.exec([{ sql: "UPDATE coordinator SET node_id = ?, term = ? WHERE id = 1 AND term <= ?", params: [this.opts.nodeId, term, term], expectChanges: 1 }]);
      this.fencedTerm = term;
      this.log(`coordinating in term ${term}`);
      return true;
    } catch (e) {
      if (e instanceof DatabaseClientError && e.code === grpc.status.FAILED_PRECONDITION) return false;
      throw e;
    }
  }

  private fence(term: number): ExecPrecondition {
    return { sql: "SELECT node_id || ':' || term FROM coordinator WHERE id = 1", expectValue: `${this.opts.nodeId}:${term}`, message: "no longer the coordinator" };
  }

  /** Heartbeats every member; records (and returns) who answered, and when. */
  private async heartbeat(members: MemberRow[], term: number, fence: ExecPrecondition): Promise<{ answered: Set<string>; at: string }> {
    const timeoutMs = Math.max(500, Math.min(2_000, this.intervalMs * 2));
    const answered = new Set<string>();
    await Promise.all(
      members.map(async (m) => {
        if (m.state === MEMBER_STATE.pending) return;
        if (m.nodeId !== this.opts.nodeId) {
          try {
            await this.opts.members.heartbeat(m.address, { coordinator: this.opts.nodeId, term, timeMs: Date.now() }, timeoutMs);
          } catch {
            return;
          }
        }
        answered.add(m.nodeId);
      }),
    );
    const at = new Date().toISOString();
    if (answered.size) {
      await this.opts.db.exec([{ sql: `UPDATE members SET heartbeat = ? WHERE node_id IN (${[...answered].map(() => "?").join(", ")})`, params: [at, ...answered] }], {
        preconditions: [fence],
      });
    }
    return { answered, at };
  }

  private async expireTokens(fence: ExecPrecondition): Promise<void> {
    const now = Date.now();
    for (const op of await listOperations(this.opts.db, { class: "token", running: true })) {
      const expires = op.metadata?.expiresAt;
      if (typeof expires !== "string" || Date.parse(expires) > now) continue;
      await this.opts.db
        .exec(updateStatements(finished(op, STATUS.Cancelled)), { preconditions: [fence, stillRunning(op.id)] })
        .catch(() => undefined); // used or revoked meanwhile
    }
  }
}
