// `lxc cluster evacuate|restore MEMBER` (POST /1.0/cluster/members/<name>/state):
// plan with the pure planner (services/placement/src/evacuation/plan.ts) from the
// database's members and instances and the agents' live states; refuse before
// anything changes when it cannot be done; otherwise record the plan and its steps
// (evacuation_plans / evacuation_steps) in the same write as the operation and the
// member's new state (EVACUATED / CREATED), then execute the steps with bounded
// concurrency (cluster.evacuate_concurrency). Each step's `done` is written in the
// same batch as the change that completes it, so a later run (a resume) can tell
// what is left: see resumeSteps() and services/api/README.md.
import { setTimeout as sleep } from "node:timers/promises";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import { planEvacuation, planRestore, type EvacuationStep, type PlannedInstance } from "../../../placement/src/evacuation/plan.ts";
import type { PolicyMember } from "../../../placement/src/policy/index.ts";
import { readStoredConfig } from "../config.ts";
import { MEMBER_STATE } from "../cluster/members.ts";
import { evacuateConcurrency } from "../cluster/settings.ts";
import { agentMessage, type AgentClients } from "../instances/agents.ts";
import { findInstance, listInstances, liveStatus, type InstanceRow } from "../instances/instances.ts";
import { liveMembers, policyMembers, type LiveMember } from "../instances/placement.ts";
import type { TaskContext } from "../operations/tasks.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";
import type { MemberClients } from "../cluster/member-service.ts";
import { scriptletSession } from "../placement/scriptlet-run.ts";
import { instanceEvent } from "../events/events.ts";
import { dropStaleCopies, moveStoppedInstance, precopyInstance, stopCleanThenForced } from "./move.ts";
import { listPools } from "../storage/pools.ts";

export type EvacuationAction = "evacuate" | "restore";

export interface PreparedPlan {
  member: LiveMember;
  action: EvacuationAction;
  mode: string;
  steps: EvacuationStep[];
}

/** The live running instances (agent names) of each member asked (quick deadline). */
async function runningByMember(agents: AgentClients, members: LiveMember[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  await Promise.all(
    members.map(async (m) => {
      if (m.status === "Offline") return;
      try {
        const list = await agents.get(m.row.address, true).listInstances({ brief: true });
        out.set(m.row.nodeId, new Set(list.filter((i) => liveStatus(i).status_code === 103).map((i) => i.name)));
      } catch {
        /* unreachable: its instances count as stopped; the planner refuses an offline member */
      }
    }),
  );
  return out;
}

function planned(rows: InstanceRow[], members: LiveMember[], running: Map<string, Set<string>>, sharedPools: Set<string>): PlannedInstance[] {
  return rows.map((r) => ({
    project: r.project,
    name: r.name,
    location: members.find((m) => m.row.nodeId === r.nodeId)?.row.name ?? "",
    running: running.get(r.nodeId)?.has(r.agentName) ?? false,
    architecture: r.architecture,
    type: "container",
    sharedStorage: sharedPools.has(r.pool),
    config: r.config,
  }));
}

/** Plans an evacuation or a restore; throws the LXD-style error when it cannot be done. */
export async function preparePlan(
  db: Database,
  agents: AgentClients,
  memberName: string,
  action: EvacuationAction,
  mode: string,
  scriptlet?: { members: MemberClients; location: string },
): Promise<PreparedPlan> {
  const members = await liveMembers(db);
  const member = members.find((m) => m.row.name === memberName);
  if (!member) throw ApiError.notFound("Failed to update cluster member state: Cluster member not found");
  const memberStatus = member.row.state === MEMBER_STATE.evacuated ? "EVACUATED" : member.status === "Offline" ? "OFFLINE" : "ONLINE";
  const rows = await listInstances(db);
  const sharedPools = new Set((await listPools(db)).filter((p) => p.driver === "shared").map((p) => p.name));
  const creating = rows.find((r) => r.power === "CREATING" && (action === "restore" || r.nodeId === member.row.nodeId));
  if (creating) throw new ApiError(409, `Instance "${creating.name}" in project "${creating.project}" is being created: try again when it is`);
  if (action === "evacuate") {
    if (memberStatus === "EVACUATED") throw ApiError.badRequest("Cluster member is already evacuated");
    const mine = rows.filter((r) => r.nodeId === member.row.nodeId);
    const running = await runningByMember(agents, [member]);
    if (memberStatus !== "OFFLINE" && mine.length && !running.has(member.row.nodeId)) throw new ApiError(503, `Cluster member "${member.row.name}" is not reachable`);
    const counts = new Map<string, { all: number; project: number }>();
    for (const r of rows) counts.set(r.nodeId, { all: (counts.get(r.nodeId)?.all ?? 0) + 1, project: 0 });
    const policy = policyMembers(members, counts);
    // With instances.placement.scriptlet set, it chooses each target (reason "evacuation").
    const session = scriptlet ? await scriptletSession(db, scriptlet.members, { location: scriptlet.location }) : undefined;
    const chooseTarget = session
      ? (inst: PlannedInstance, candidates: readonly PolicyMember[]) => {
          const row = mine.find((r) => r.project === inst.project && r.name === inst.name);
          const run = session.run(
            { instance: { name: inst.name, project: inst.project, type: inst.type, config: inst.config, devices: row?.devices ?? {}, profiles: row?.profiles ?? [] }, reason: "evacuation", project: inst.project },
            candidates.map((c) => c.name),
          );
          if (run.error) return { error: run.error };
          return run.target ? { target: run.target } : { error: "it did not choose a member (call set_target)" };
        }
      : undefined;
    const plan = planEvacuation({ member: member.row.name, memberStatus, mode: mode || undefined, instances: planned(mine, members, running, sharedPools), members: policy, chooseTarget });
    await session?.publishLogs();
    if (!plan.ok) throw new ApiError(plan.status, plan.error);
    return { member, action, mode, steps: plan.steps };
  }
  if (memberStatus !== "EVACUATED") throw ApiError.badRequest("Cluster member is already restored");
  if (member.status === "Offline") throw ApiError.badRequest(`Cluster member "${member.row.name}" is offline: it cannot take its instances back`);
  const relevant = rows.filter((r) => r.nodeId === member.row.nodeId || r.config["volatile.evacuate.origin"] === member.row.name);
  const holders = members.filter((m) => relevant.some((r) => r.nodeId === m.row.nodeId));
  const running = await runningByMember(agents, holders);
  const unreachable = holders.find((m) => !running.has(m.row.nodeId));
  if (unreachable) throw new ApiError(503, `Cluster member "${unreachable.row.name}" is not reachable: it holds instances of "${member.row.name}"`);
  const plan = planRestore({ member: member.row.name, memberStatus, instances: planned(relevant, members, running, sharedPools) });
  if (!plan.ok) throw new ApiError(plan.status, plan.error);
  return { member, action, mode, steps: plan.steps };
}

/** The statements that record the plan and switch the member's state (guarded: a concurrent request fails). */
export function planStatements(id: string, p: PreparedPlan): ExecStatement[] {
  const now = new Date().toISOString();
  const [from, to] = p.action === "evacuate" ? [MEMBER_STATE.created, MEMBER_STATE.evacuated] : [MEMBER_STATE.evacuated, MEMBER_STATE.created];
  return [
    { sql: "UPDATE members SET state = ? WHERE node_id = ? AND state = ?", params: [to, p.member.row.nodeId, from], expectChanges: 1 },
    { sql: "INSERT INTO evacuation_plans (id, node_id, action, mode, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'running', ?, ?)", params: [id, p.member.row.nodeId, p.action, p.mode, now, now] },
    ...p.steps.map((s, seq) => ({
      sql: "INSERT INTO evacuation_steps (plan_id, seq, project, name, action, target, stop_first, start_after, origin, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      params: [id, seq, s.project, s.name, s.action, s.target ?? "", s.stopFirst ? 1 : 0, s.startAfter ? 1 : 0, s.origin, s.reason],
    })),
  ];
}

const stepDone = (planId: string, seq: number): ExecStatement => ({ sql: "UPDATE evacuation_steps SET status = 'done', error = '' WHERE plan_id = ? AND seq = ?", params: [planId, seq] });

/** A running instance still stopping after this long is pre-copied meanwhile. */
const PRECOPY_AFTER_MS = 150;

/** Running on `m`; false when `m` no longer holds it (e.g. relocated by a deposed coordinator's copy of this step). */
async function isRunning(agents: AgentClients, m: LiveMember, agentName: string): Promise<boolean> {
  try {
    return liveStatus(await agents.get(m.row.address).instanceState(agentName)).status_code === 103;
  } catch (e) {
    if ((e as { code?: number }).code === 5 /* NOT_FOUND */) return false;
    throw e;
  }
}

/** Where a step's time went, for the coordinator's log ("stop 2.03s, copy 0.21s, ..."). */
class StepClock {
  private last = performance.now();
  readonly phases: string[] = [];
  lap(phase: string): void {
    const now = performance.now();
    this.phases.push(`${phase} ${((now - this.last) / 1000).toFixed(2)}s`);
    this.last = now;
  }
}

/** Carries out one step; idempotent (a resumed step skips what is already done). Returns its words for the progress line. */
async function runStep(db: Database, agents: AgentClients, members: LiveMember[], planId: string, seq: number, s: EvacuationStep, clock: StepClock): Promise<string> {
  const row = await findInstance(db, s.project, s.name);
  const cur = members.find((m) => m.row.nodeId === row.nodeId);
  if (!cur) throw new Error(`its cluster member (node ${row.nodeId}) is no longer in the cluster`);
  const where = "WHERE project = ? AND name = ?";
  const config = { ...row.config };
  if (s.origin) config["volatile.evacuate.origin"] = s.origin;
  else delete config["volatile.evacuate.origin"];
  const label = `"${s.name}"${s.project === "default" ? "" : ` in project "${s.project}"`}`;
  // Lifecycle events in the batch of the change they report (no requestor: the coordinator acts).
  const event = (action: string, location: string, context?: Record<string, unknown>) =>
    instanceEvent(action, s, location, { context });

  if (s.action === "stop") {
    const stopped = s.stopFirst && (await isRunning(agents, cur, row.agentName));
    if (stopped) await stopCleanThenForced(agents, cur, row.agentName);
    if (s.stopFirst) config["volatile.last_state.power"] = "RUNNING";
    await db.exec([{ sql: `UPDATE instances SET power = 'STOPPED', config = ? ${where}`, params: [JSON.stringify(config), s.project, s.name] }, stepDone(planId, seq), ...(stopped ? event("instance-shutdown", cur.row.name) : [])]);
    return `${label} stopped on ${cur.row.name}`;
  }
  if (s.action === "start") {
    const started = !(await isRunning(agents, cur, row.agentName));
    if (started) await agents.get(cur.row.address).startInstance(row.agentName);
    delete config["volatile.last_state.power"];
    await db.exec([{ sql: `UPDATE instances SET power = 'RUNNING', last_used_at = ?, config = ? ${where}`, params: [new Date().toISOString(), JSON.stringify(config), s.project, s.name] }, stepDone(planId, seq), ...(started ? event("instance-started", cur.row.name) : [])]);
    return `${label} started on ${cur.row.name}`;
  }
  // copy / relocate (moveStoppedInstance decides by the instance's pool).
  const target = members.find((m) => m.row.name === s.target);
  if (!target) throw new Error(`target cluster member "${s.target}" is no longer in the cluster`);
  let moved = "";
  let stale = "";
  if (row.nodeId !== target.row.nodeId) {
    clock.lap("read");
    let precopyId: string | undefined;
    const wasRunning = await isRunning(agents, cur, row.agentName);
    if (wasRunning) {
      // A clean shutdown that takes a while (busybox: 2 s, a distro: more) is used to
      // pre-copy it: once stopped, only the delta travels. A quick stop is not worth it.
      const stopping = stopCleanThenForced(agents, cur, row.agentName);
      const stoppedQuickly = await Promise.race([stopping.then(() => true), sleep(PRECOPY_AFTER_MS).then(() => false)]);
      if (!stoppedQuickly) [, precopyId] = await Promise.all([stopping, precopyInstance(db, agents, row, cur, target)]);
      else await stopping;
    }
    clock.lap(precopyId ? "stop+precopy" : "stop");
    // Started on the target as soon as it is authoritative, before the old copy is deleted.
    const startOnTarget = async () => {
      await agents.get(target.row.address).startInstance(row.agentName);
      clock.lap("start");
    };
    const migrated = [...(wasRunning ? event("instance-shutdown", cur.row.name) : []), ...event("instance-migrated", target.row.name, { old_location: cur.row.name })];
    const how = await moveStoppedInstance(db, agents, row, cur, target, { config, statements: s.startAfter ? migrated : [stepDone(planId, seq), ...migrated], afterSwitch: s.startAfter ? startOnTarget : undefined, precopyId, lap: (phase) => clock.lap(phase) });
    clock.lap("cleanup");
    moved = `${how} from ${cur.row.name} to ${target.row.name}`;
  } else {
    const cleaned = await dropStaleCopies(db, agents, row, members);
    stale = cleaned.length ? ` (its stale copy on ${cleaned.join(", ")} deleted)` : "";
  }
  if (s.startAfter) {
    const start = !moved && !(await isRunning(agents, target, row.agentName));
    if (start) await agents.get(target.row.address).startInstance(row.agentName);
    await db.exec([{ sql: `UPDATE instances SET power = 'RUNNING', last_used_at = ? ${where}`, params: [new Date().toISOString(), s.project, s.name] }, stepDone(planId, seq), ...(moved || start ? event("instance-started", target.row.name) : [])]);
    clock.lap("write");
    return `${label} ${moved || `on ${target.row.name}${stale}`} and started`;
  }
  if (!moved) await db.exec([stepDone(planId, seq)]);
  return `${label} ${moved || `already on ${target.row.name}${stale}`}`;
}

/**
 * Executes a recorded plan's steps that are not done yet, `cluster.evacuate_concurrency`
 * at a time, publishing `evacuation_progress` ("3/8: "c3" copied from member1 to
 * member2 and started"). Fails (after trying every step) when any step failed.
 */
export async function executePlan(
  db: Database,
  agents: AgentClients,
  planId: string,
  action: EvacuationAction,
  t: TaskContext,
  log: (line: string) => void,
  stillCoordinator: () => Promise<boolean> = async () => true,
): Promise<Record<string, unknown>> {
  const r = await db.query("SELECT seq, project, name, action, target, stop_first, start_after, origin, reason, status FROM evacuation_steps WHERE plan_id = ? ORDER BY seq", [planId]);
  const all = r.rows.map((x) => ({
    seq: Number(x[0]),
    done: String(x[9]) === "done",
    step: { project: String(x[1]), name: String(x[2]), action: String(x[3]) as EvacuationStep["action"], target: String(x[4]) || undefined, stopFirst: Number(x[5]) !== 0, startAfter: Number(x[6]) !== 0, origin: String(x[7]), reason: String(x[8]) },
  }));
  const total = all.length;
  let done = all.filter((x) => x.done).length;
  const queue = all.filter((x) => !x.done);
  const members = await liveMembers(db);
  const concurrency = Math.max(1, evacuateConcurrency(await readStoredConfig(db)));
  const failures: string[] = [];
  let last = `${done}/${total}: ${action === "evacuate" ? "evacuating" : "restoring"}`;
  t.progress({ evacuation_progress: last });
  let deposed = false;
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      // A deposed coordinator's writes fail, but its agent calls would not: it starts
      // no further step (its successor resumes the plan from the steps not done).
      if (deposed || !(await stillCoordinator().catch(() => false))) {
        deposed = true;
        return;
      }
      try {
        const clock = new StepClock();
        const what = await runStep(db, agents, members, planId, next.seq, next.step, clock);
        log(`${action} step ${next.seq}: ${what}${clock.phases.length ? ` (${clock.phases.join(", ")})` : ""}`);
        done += 1;
        last = `${done}/${total}: ${what}`;
        t.progress({ evacuation_progress: last });
      } catch (e) {
        const msg = `"${next.step.name}" in project "${next.step.project}": ${agentMessage(e)}`;
        failures.push(msg);
        log(`${action} step ${next.seq} failed: ${msg}`);
        await db.exec([{ sql: "UPDATE evacuation_steps SET status = 'failed', error = ? WHERE plan_id = ? AND seq = ?", params: [agentMessage(e), planId, next.seq] }]).catch(() => undefined);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(queue.length, 1)) }, worker));
  // Deposed during the last steps, the fence refused their writes: say that, not "failed".
  if (deposed || (failures.length && !(await stillCoordinator().catch(() => false)))) {
    throw new Error(`No longer the coordinator: the next one resumes this ${action} (${done}/${total} done here)`);
  }
  const now = new Date().toISOString();
  if (failures.length) {
    await db.exec([{ sql: "UPDATE evacuation_plans SET status = 'failed', error = ?, updated_at = ? WHERE id = ?", params: [failures.join("; "), now, planId] }]).catch(() => undefined);
    throw new Error(`Failed to ${action} ${failures.length} of ${total} instances: ${failures.join("; ")}`);
  }
  await db.exec([{ sql: "UPDATE evacuation_plans SET status = 'done', updated_at = ? WHERE id = ?", params: [now, planId] }]);
  return { evacuation_progress: last };
}
