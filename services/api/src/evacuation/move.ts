// Moving a stopped instance between members (`lxc move NAME --target M`, and every
// copy step of an evacuation or a restore), through the members' agents:
//
//   1. the target receives the source's SendInstance stream (tar + checksum; the
//      instance appears there only once complete and verified) — skipped when the
//      target already holds a complete copy (a resumed move);
//   2. ONE database write makes the target authoritative: the `instances` row's
//      node_id (guarded by the old node_id), config changes (volatile.evacuate.origin)
//      and whatever the caller adds (an evacuation step's status, a lifecycle event);
//   3. the source's copy is deleted (already gone: fine).
//
// A crash between 1 and 2 leaves an unreferenced copy on the target (the row still
// names the source: nothing is lost, and a retry reuses that copy); between 2 and 3 a
// stale stopped copy on the source that a retry deletes. The instance never runs in
// two places: it is stopped throughout, and only the row's member starts it.
// The whole root filesystem travels in the stream, so the target needs no image.
// On a shared pool (remote) nothing is copied: step 1 is the target's AdoptInstance
// (it becomes the owner of the files every member sees) and step 3 has nothing to do.
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import { agentMessage, type AgentClients } from "../instances/agents.ts";
import type { InstanceRow } from "../instances/instances.ts";
import type { LiveMember } from "../instances/placement.ts";
import type { Database } from "../schema.ts";
import { agentPoolName, ensurePool, requirePool } from "../storage/pools.ts";

export interface MoveOptions {
  /** The instance's config after the move (default: unchanged). */
  config?: Record<string, string>;
  /** Written in the same batch as the switch of node_id. */
  statements?: ExecStatement[];
  /** Runs once the target is authoritative, before the source's copy is deleted (e.g. start it there: the deletion is not on the critical path). */
  afterSwitch?: () => Promise<void>;
}

const isNotFound = (e: unknown) => (e as { code?: number }).code === 5;

/** Whether the member's agent holds the instance (false on NOT_FOUND). */
export async function agentHas(agents: AgentClients, m: LiveMember, agentName: string): Promise<boolean> {
  try {
    await agents.get(m.row.address).instanceState(agentName);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/**
 * Moves a stopped instance from `from` to `to` (see the file comment for the order).
 * Resolves to how: "copied" (a `dir` pool) or "relocated" (a shared pool).
 */
export async function moveStoppedInstance(db: Database, agents: AgentClients, i: InstanceRow, from: LiveMember, to: LiveMember, opts: MoveOptions = {}): Promise<"copied" | "relocated"> {
  const source = agents.get(from.row.address);
  const target = agents.get(to.row.address);
  const [pool, sourceHas, targetHas] = await Promise.all([requirePool(db, i.pool), agentHas(agents, from, i.agentName), agentHas(agents, to, i.agentName)]);
  const relocate = pool.driver === "shared";
  if (!targetHas) {
    if (!sourceHas && !relocate) throw new Error(`Instance "${i.name}" is on neither "${from.row.name}" nor "${to.row.name}"`);
    try {
      await ensurePool(target, pool, to.row.nodeId);
      // On a shared pool the files stay where they are: the target becomes their owner
      // (the source then answers NOT_FOUND for it, so a retry skips to the write below).
      if (relocate) await target.adoptInstance(i.agentName, agentPoolName(pool.name));
      else await source.copyInstanceTo(target, i.agentName, agentPoolName(pool.name));
    } catch (e) {
      // A deposed coordinator running the same step may have put it there meanwhile
      // (its agent calls are not fenced): a complete copy on the target is reused.
      const arrived = (e as { code?: number }).code === 6 /* ALREADY_EXISTS */ && (await agentHas(agents, to, i.agentName));
      if (!arrived) throw new Error(`Failed ${relocate ? "relocating" : "copying"} instance "${i.name}" from "${from.row.name}" to "${to.row.name}": ${agentMessage(e)}`);
    }
  }
  await db.exec([
    {
      sql: "UPDATE instances SET node_id = ?, config = ?, power = 'STOPPED' WHERE project = ? AND name = ? AND node_id = ?",
      params: [to.row.nodeId, JSON.stringify(opts.config ?? i.config), i.project, i.name, from.row.nodeId],
      expectChanges: 1,
    },
    ...(opts.statements ?? []),
  ]);
  await opts.afterSwitch?.();
  if (relocate) return "relocated";
  try {
    await source.deleteInstance(i.agentName, false);
  } catch (e) {
    if (!isNotFound(e)) throw new Error(`Instance "${i.name}" is now on "${to.row.name}", but deleting its old copy on "${from.row.name}" failed: ${agentMessage(e)}`);
  }
  return "copied";
}

/** Stops an instance cleanly (30 s), then forcibly if that fails. */
export async function stopCleanThenForced(agents: AgentClients, m: LiveMember, agentName: string): Promise<void> {
  const a = agents.get(m.row.address);
  try {
    await a.stopInstance(agentName, { timeoutMs: 30_000 });
  } catch {
    await a.stopInstance(agentName, { force: true });
  }
}
