// The member side of instances that stop by themselves (a poweroff inside, a crash):
// every second the member's agent is asked which instances it started are no longer
// running without it having stopped them; each is recorded STOPPED with LXD's
// `instance-shutdown` lifecycle event located at this member, and an ephemeral one is
// deleted (as LXD does) — its files on this member, then its row, with
// `instance-deleted`. Every write is guarded by the row still naming this member.
import type { Member as AgentMember } from "../../../member/src/agent/member.ts";
import { instanceEvent } from "../events/events.ts";
import type { Database } from "../schema.ts";

export interface SelfStopOptions {
  agent: AgentMember;
  db: Database;
  /** This member's node id (instances.node_id) and name (the events' location). */
  nodeId: string;
  name: () => string;
  log: (line: string) => void;
  intervalMs?: number;
}

/** Starts watching; returns the stop function. */
export function watchSelfStops(opts: SelfStopOptions): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void check(opts)
      .catch((e: unknown) => opts.log(`self-stopped instances: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => (busy = false));
  }, opts.intervalMs ?? 1_000);
  timer.unref();
  return () => clearInterval(timer);
}

async function check(opts: SelfStopOptions): Promise<void> {
  for (const agentName of await opts.agent.stoppedByThemselves()) {
    const r = await opts.db.query("SELECT project, name, ephemeral FROM instances WHERE agent_name = ? AND node_id = ?", [agentName, opts.nodeId]);
    const row = r.rows[0];
    if (!row) continue;
    const [project, name, ephemeral] = [String(row[0]), String(row[1]), Number(row[2]) !== 0];
    const event = (action: string) => instanceEvent(action, { project, name }, opts.name());
    const mine = "WHERE project = ? AND name = ? AND node_id = ?";
    if (ephemeral) {
      await opts.agent.delete(agentName).catch((e: unknown) => opts.log(`ephemeral ${name} stopped; deleting its files failed: ${e instanceof Error ? e.message : String(e)}`));
      await opts.db.exec([{ sql: `DELETE FROM instances ${mine}`, params: [project, name, opts.nodeId] }, ...event("instance-shutdown"), ...event("instance-deleted")]);
      opts.log(`ephemeral instance ${name} stopped by itself: deleted`);
    } else {
      await opts.db.exec([{ sql: `UPDATE instances SET power = 'STOPPED' ${mine} AND power = 'RUNNING'`, params: [project, name, opts.nodeId] }, ...event("instance-shutdown")]);
      opts.log(`instance ${name} stopped by itself`);
    }
  }
}
