// Evacuations and restores are carried out by the coordinator, not by the gateway
// that accepted them: the gateway records the plan and its operation; the
// coordinator of the current Raft term claims every running plan of an older term
// and executes its remaining steps. Every write of the execution carries the
// coordinator fence, so a deposed coordinator cannot write (its steps fail and stop),
// and the next one resumes from the steps not yet done (each step is idempotent).
import type { ExecPrecondition } from "../../../raft/src/node/database-client.ts";
import type { TlsConfig } from "../../../raft/src/transport/credentials.ts";
import { AgentClients } from "../instances/agents.ts";
import { getOperation } from "../operations/store.ts";
import { continueTask } from "../operations/tasks.ts";
import { withExec, type Database } from "../schema.ts";
import { executePlan, type EvacuationAction } from "./evacuate.ts";

/** `db` whose every write also requires `fence` to hold. */
function fenced(db: Database, fence: ExecPrecondition): Database {
  return withExec(db, (statements, opts = {}) => db.exec(statements, { ...opts, preconditions: [...(opts.preconditions ?? []), fence] }));
}

export class EvacuationRunner {
  private readonly agents: AgentClients;
  /** Plans this process is executing (by id), so a round does not start one twice. */
  private readonly running = new Set<string>();

  constructor(
    private readonly db: Database,
    tls: TlsConfig,
    private readonly log: (line: string) => void,
  ) {
    this.agents = new AgentClients(tls);
  }

  /** Claims and starts the running plans of older terms; returns without waiting for them. */
  async tick(term: number, fence: ExecPrecondition): Promise<void> {
    const r = await this.db.query("SELECT id, action FROM evacuation_plans WHERE status = 'running' AND owner_term < ?", [term]);
    for (const [idValue, actionValue] of r.rows) {
      const id = String(idValue);
      if (this.running.has(id)) continue;
      try {
        await this.db.exec([{ sql: "UPDATE evacuation_plans SET owner_term = ? WHERE id = ? AND status = 'running' AND owner_term < ?", params: [term, id, term], expectChanges: 1 }], { preconditions: [fence] });
      } catch {
        continue; // another coordinator (a newer term) has it, or it ended
      }
      const db = fenced(this.db, fence);
      const action = String(actionValue) as EvacuationAction;
      const op = await getOperation(db, id).catch(() => undefined);
      if (!op) {
        this.log(`${action} plan ${id} has no operation; marking it failed`);
        await db.exec([{ sql: "UPDATE evacuation_plans SET status = 'failed', error = 'no operation' WHERE id = ?", params: [id] }]).catch(() => undefined);
        continue;
      }
      this.running.add(id);
      this.log(`${action} plan ${id}: executing in term ${term}`);
      void continueTask(db, op, {
        run: async (t) => ({ metadata: await executePlan(db, this.agents, id, action, t, this.log, () => this.holds(fence)) }),
        log: this.log,
      }).finally(() => this.running.delete(id));
    }
  }

  /** Whether the coordinator row still names the term that claimed the plan. */
  private async holds(fence: ExecPrecondition): Promise<boolean> {
    const r = await this.db.query(fence.sql, fence.params ?? []);
    return r.rows.length === 1 && String(r.rows[0]![0]) === String(fence.expectValue);
  }

  close(): void {
    this.agents.close();
  }
}
