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
// A running instance can be pre-copied while it stops (precopyInstance); step 1 then
// sends only what changed since (a delta), or the whole again if the pre-copy was lost.
import { randomUUID } from "node:crypto";
import type { MemberClient } from "../../../member/src/agent/client.ts";
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
  /** A pre-copy staged on the target (precopyInstance): step 1 sends the delta since. */
  precopyId?: string;
  /** Told when each phase ends ("lookup", "copy", "switch"), for the caller's timings. */
  lap?: (phase: string) => void;
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
  opts.lap?.("lookup");
  let phase = relocate ? "relocate" : "copy";
  if (!targetHas) {
    if (!sourceHas && !relocate) throw new Error(`Instance "${i.name}" is on neither "${from.row.name}" nor "${to.row.name}"`);
    try {
      await ensurePool(target, pool, to.row.nodeId);
      // On a shared pool the files stay where they are: the target becomes their owner
      // (the source then answers NOT_FOUND for it, so a retry skips to the write below).
      if (relocate) await target.adoptInstance(i.agentName, agentPoolName(pool.name));
      else if (opts.precopyId) phase = await deltaOrWhole(source, target, i.agentName, agentPoolName(pool.name), opts.precopyId);
      else await source.copyInstanceTo(target, i.agentName, agentPoolName(pool.name));
    } catch (e) {
      // A deposed coordinator running the same step may have put it there meanwhile
      // (its agent calls are not fenced): a complete copy on the target is reused.
      const arrived = (e as { code?: number }).code === 6 /* ALREADY_EXISTS */ && (await agentHas(agents, to, i.agentName));
      if (!arrived) throw new Error(`Failed ${relocate ? "relocating" : "copying"} instance "${i.name}" from "${from.row.name}" to "${to.row.name}": ${agentMessage(e)}`);
    }
  }
  opts.lap?.(phase);
  await db.exec([
    {
      sql: "UPDATE instances SET node_id = ?, config = ?, power = 'STOPPED' WHERE project = ? AND name = ? AND node_id = ?",
      params: [to.row.nodeId, JSON.stringify(opts.config ?? i.config), i.project, i.name, from.row.nodeId],
      expectChanges: 1,
    },
    ...(opts.statements ?? []),
  ]);
  opts.lap?.("switch");
  await opts.afterSwitch?.();
  if (relocate) return "relocated";
  try {
    await source.deleteInstance(i.agentName, false);
  } catch (e) {
    if (!isNotFound(e)) throw new Error(`Instance "${i.name}" is now on "${to.row.name}", but deleting its old copy on "${from.row.name}" failed: ${agentMessage(e)}`);
  }
  return "copied";
}

/** Completes a pre-copy by its delta; when either member lost it (FAILED_PRECONDITION), copies in full. Resolves to the phase's name. */
async function deltaOrWhole(source: MemberClient, target: MemberClient, agentName: string, pool: string, precopyId: string): Promise<string> {
  try {
    await source.copyInstanceTo(target, agentName, pool, { sincePrecopyId: precopyId });
    return "delta";
  } catch (e) {
    if ((e as { code?: number }).code !== 9 /* FAILED_PRECONDITION */) throw e;
    await source.copyInstanceTo(target, agentName, pool);
    return `copy (pre-copy lost: ${agentMessage(e)})`;
  }
}

/**
 * Stages a copy of a (possibly running) instance on `to` while it keeps running or
 * stops on `from`, so the move that follows sends only a delta. Resolves to the
 * pre-copy id, or undefined when there is nothing to pre-copy (a shared pool) or it
 * failed (the move then copies in full; a pre-copy is only an optimisation).
 */
export async function precopyInstance(db: Database, agents: AgentClients, i: InstanceRow, from: LiveMember, to: LiveMember): Promise<string | undefined> {
  try {
    const pool = await requirePool(db, i.pool);
    if (pool.driver === "shared") return undefined;
    const target = agents.get(to.row.address);
    await ensurePool(target, pool, to.row.nodeId);
    const id = randomUUID();
    await agents.get(from.row.address).copyInstanceTo(target, i.agentName, agentPoolName(pool.name), { precopyId: id });
    return id;
  } catch {
    return undefined;
  }
}

/**
 * A resumed move whose switch was already written (the row names its new member):
 * a crash between the switch and the deletion of the old copy left that copy on
 * another member, which nothing else would ever delete. Deletes such stopped copies
 * (a shared pool has none: the files moved with their owner). Resolves to the
 * members it cleaned.
 */
export async function dropStaleCopies(db: Database, agents: AgentClients, i: InstanceRow, members: LiveMember[]): Promise<string[]> {
  if ((await requirePool(db, i.pool)).driver === "shared") return [];
  const stale = members.filter((m) => m.row.nodeId !== i.nodeId && m.status !== "Offline");
  const cleaned = await Promise.all(
    stale.map(async (m) => {
      try {
        await agents.get(m.row.address).deleteInstance(i.agentName, false);
        return m.row.name;
      } catch {
        return undefined; // not there (NOT_FOUND), or running there: never deleted here
      }
    }),
  );
  return cleaned.filter((n): n is string => n !== undefined);
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
