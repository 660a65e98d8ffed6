// executePlan (src/evacuation/evacuate.ts) is how the coordinator carries out a recorded
// evacuation plan: it runs the steps that are not done yet, writes each step's `done`
// in the same batch as the change that completes it, publishes "k/N: ..." progress,
// and at the end marks the plan done, or failed naming the instances that failed.
//
// The plans here are written the way the gateway writes them (planStatements) into the
// real database state machine, in memory (test/support/memory-database.ts), and every
// write of the execution carries the coordinator fence, as the coordinator's runner
// does (src/evacuation/runner.ts). The steps chosen need no member agent: a "stop" step
// of an instance that was not running (stop_first = 0) only writes, and so does a
// "copy" step whose instance already sits on its target on shared storage. The agents
// passed in therefore fail the step and are recorded if anything calls them. The last
// two tests give members that hold copies of an instance (a resume after a crash
// between the switch and the cleanup).
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { DeleteInstanceReply, InstanceInfo, InstanceStateReply, InstanceStatus } from "../../../../proto/gen/member.ts";
import type { MemberClient } from "../../../member/src/agent/client.ts";
import type { ExecPrecondition } from "../../../raft/src/node/database-client.ts";
import type { EvacuationStep } from "../../../placement/src/evacuation/plan.ts";
import { executePlan, planStatements } from "../../src/evacuation/evacuate.ts";
import type { AgentClients } from "../../src/instances/agents.ts";
import { insertInstanceStatement } from "../../src/instances/instances.ts";
import { liveMembers } from "../../src/instances/placement.ts";
import type { TaskContext } from "../../src/operations/tasks.ts";
import { withExec, type Database } from "../../src/schema.ts";
import { memoryDatabase } from "../support/memory-database.ts";

const PLAN = "plan-1";

// ---- the cluster: member1 is being evacuated, member2 coordinates (term 7) ----

/** The coordinator's fence, as src/cluster/coordinator.ts builds it. */
const FENCE: ExecPrecondition = { sql: "SELECT node_id || ':' || term FROM coordinator WHERE id = 1", expectValue: "n2:7", message: "no longer the coordinator" };

/** Two online members, the coordinator row, and stopped instances `names` on member1. */
async function cluster(t: TestContext, names: string[], opts: { pool?: string; concurrency?: number } = {}): Promise<Database> {
  const db = await memoryDatabase();
  t.after(() => db.close());
  const now = new Date().toISOString(); // heartbeat: both members online
  await db.exec([
    { sql: "INSERT INTO members (node_id, name, address, architecture, heartbeat) VALUES ('n1', 'member1', '10.0.0.1:8443', 'x86_64', ?)", params: [now] },
    { sql: "INSERT INTO members (node_id, name, address, architecture, heartbeat) VALUES ('n2', 'member2', '10.0.0.2:8443', 'x86_64', ?)", params: [now] },
    { sql: "UPDATE coordinator SET node_id = 'n2', term = 7 WHERE id = 1", expectChanges: 1 },
    { sql: "INSERT INTO storage_pools (name, driver) VALUES ('shared', 'shared')" },
    ...(opts.concurrency ? [{ sql: "INSERT INTO config (key, value) VALUES ('cluster.evacuate_concurrency', ?)", params: [String(opts.concurrency)] }] : []),
    ...names.map((name) => insertInstanceStatement({
      project: "default", name, nodeId: "n1", agentName: name, type: "container", architecture: "x86_64", description: "", ephemeral: false,
      config: {}, devices: {}, profiles: ["default"], imageFingerprint: "", createdAt: now, lastUsedAt: "", power: "STOPPED", pool: opts.pool ?? "default",
    })),
  ]);
  return db;
}

/** "Stop in place" steps (cluster.evacuate=stop) for instances that were not running. */
const stopSteps = (names: string[]): EvacuationStep[] =>
  names.map((name) => ({ project: "default", name, action: "stop", stopFirst: false, startAfter: false, origin: "", reason: "mode=stop: stopped in place" }));

/** Records the plan, its steps and member1's EVACUATED state in one write, as the gateway does. */
async function recordPlan(db: Database, steps: EvacuationStep[]): Promise<void> {
  const member = (await liveMembers(db)).find((m) => m.row.name === "member1")!;
  await db.exec(planStatements(PLAN, { member, action: "evacuate", mode: "stop", steps }));
}

/** `db` as the coordinator uses it: every write also requires the fence to hold. */
const asCoordinator = (db: Database): Database =>
  withExec(db, (statements, opts = {}) => db.exec(statements, { ...opts, preconditions: [...(opts.preconditions ?? []), FENCE] }));

/** What the runner passes as `stillCoordinator`: does the coordinator row still name us? */
const stillCoordinator = (db: Database) => async () => String((await db.query(FENCE.sql)).rows[0]?.[0]) === FENCE.expectValue;

/** The coordinator of a newer Raft term (node n3, term 8) claims the row. */
async function newerCoordinatorClaims(db: Database): Promise<void> {
  await db.exec([{ sql: "UPDATE coordinator SET node_id = 'n3', term = 8 WHERE id = 1", expectChanges: 1 }]);
}

// ---- what executePlan is given besides the database ----

/**
 * Member agents nobody may use: every call is recorded and throws. Recorded as well as
 * thrown because some callers (dropStaleCopies) swallow agent errors. AgentClients is a
 * class with private fields, so no object literal is one; executePlan reaches agents
 * only through get(), the one method this stands in for.
 */
function untouchableAgents(): { agents: AgentClients; calls: string[] } {
  const calls: string[] = [];
  const fake = {
    get(address: string): never {
      calls.push(address);
      throw new Error(`the agent at ${address} was called; this step should only write`);
    },
  };
  return { agents: fake as unknown as AgentClients, calls };
}

/** A task context that keeps every `evacuation_progress` line it is given. */
function recordingTask(): { task: TaskContext; progress: string[] } {
  const progress: string[] = [];
  return { task: { progress: (m) => progress.push(String(m.evacuation_progress)) }, progress };
}

/** The k of every "k/N: ..." progress line. */
const counts = (progress: string[]) => progress.map((p) => p.split(":")[0]);

// ---- reading the outcome ----

async function stepStates(db: Database): Promise<string[]> {
  const r = await db.query("SELECT name, status, error FROM evacuation_steps WHERE plan_id = ? ORDER BY seq", [PLAN]);
  return r.rows.map(([name, status, error]) => `${String(name)} ${String(status)}${error ? `: ${String(error)}` : ""}`);
}

async function planState(db: Database): Promise<{ status: string; error: string }> {
  const r = await db.query("SELECT status, error FROM evacuation_plans WHERE id = ?", [PLAN]);
  return { status: String(r.rows[0]![0]), error: String(r.rows[0]![1]) };
}

// ---- the stories ----

test("a plan of three stop steps runs them all: every step done, then the plan, progress up to 3/3", async (t) => {
  const db = await cluster(t, ["c1", "c2", "c3"]);
  await recordPlan(db, stopSteps(["c1", "c2", "c3"]));
  const { agents, calls } = untouchableAgents();
  const { task, progress } = recordingTask();
  const log: string[] = [];

  const result = await executePlan(asCoordinator(db), agents, PLAN, "evacuate", task, (l) => log.push(l), stillCoordinator(db));

  assert.deepEqual(await stepStates(db), ["c1 done", "c2 done", "c3 done"]);
  assert.deepEqual(await planState(db), { status: "done", error: "" });
  assert.deepEqual(counts(progress), ["0/3", "1/3", "2/3", "3/3"]);
  assert.equal(progress[0], "0/3: evacuating");
  assert.match(progress.at(-1)!, /^3\/3: "c\d" stopped on member1$/);
  assert.deepEqual(result, { evacuation_progress: progress.at(-1) }, "the operation's final metadata is the last progress line");
  assert.equal(log.length, 3, "one log line per step");
  assert.deepEqual(calls, [], "no agent was asked anything");
});

test("a coordinator deposed after the first step starts no further step: the rest stay pending for its successor", async (t) => {
  // One step at a time, so "after the first step" means exactly that.
  const db = await cluster(t, ["c1", "c2", "c3"], { concurrency: 1 });
  await recordPlan(db, stopSteps(["c1", "c2", "c3"]));
  const { agents, calls } = untouchableAgents();
  const { task, progress } = recordingTask();
  // The first step's log line is written once its `done` is: a newer coordinator claims
  // the row right then. (The memory database applies a write before exec returns.)
  const log = (line: string) => {
    if (line.startsWith("evacuate step 0:")) void newerCoordinatorClaims(db);
  };

  await assert.rejects(
    executePlan(asCoordinator(db), agents, PLAN, "evacuate", task, log, stillCoordinator(db)),
    /^Error: No longer the coordinator: the next one resumes this evacuate \(1\/3 done here\)$/,
  );

  assert.deepEqual(await stepStates(db), ["c1 done", "c2 pending", "c3 pending"]);
  assert.deepEqual(await planState(db), { status: "running", error: "" }, "the plan is left for the next coordinator");
  assert.deepEqual(counts(progress), ["0/3", "1/3"]);
  assert.deepEqual(calls, []);
});

test("should the check miss a deposition, the fence still refuses the deposed coordinator's writes", async (t) => {
  // The same deposition, but the check answers "still coordinator" regardless: the
  // executor runs the next steps and only the fence on each write stops them.
  const db = await cluster(t, ["c1", "c2", "c3"], { concurrency: 1 });
  await recordPlan(db, stopSteps(["c1", "c2", "c3"]));
  const { agents } = untouchableAgents();
  const log = (line: string) => {
    if (line.startsWith("evacuate step 0:")) void newerCoordinatorClaims(db);
  };

  await assert.rejects(
    executePlan(asCoordinator(db), agents, PLAN, "evacuate", recordingTask().task, log, async () => true),
    /^Error: Failed to evacuate 2 of 3 instances: "c2" in project "default": precondition 0 failed \(no longer the coordinator\): expected value "n2:7", got "n3:8"; "c3" /,
  );

  // Not even "failed" was written for them, nor the plan's failure: the successor resumes it whole.
  assert.deepEqual(await stepStates(db), ["c1 done", "c2 pending", "c3 pending"]);
  assert.deepEqual(await planState(db), { status: "running", error: "" });
});

test("a resumed plan runs only the steps not done yet (one that failed before is tried again)", async (t) => {
  const db = await cluster(t, ["c1", "c2", "c3"]);
  await recordPlan(db, stopSteps(["c1", "c2", "c3"]));
  // A previous coordinator completed c1 and failed c2 before it was deposed.
  await db.exec([
    { sql: "UPDATE evacuation_steps SET status = 'done' WHERE plan_id = ? AND seq = 0", params: [PLAN], expectChanges: 1 },
    { sql: "UPDATE evacuation_steps SET status = 'failed', error = 'agent unreachable' WHERE plan_id = ? AND seq = 1", params: [PLAN], expectChanges: 1 },
  ]);
  const { agents, calls } = untouchableAgents();
  const { task, progress } = recordingTask();
  const log: string[] = [];

  await executePlan(asCoordinator(db), agents, PLAN, "evacuate", task, (l) => log.push(l), stillCoordinator(db));

  assert.deepEqual(log.map((l) => l.split(":")[0]).sort(), ["evacuate step 1", "evacuate step 2"], "c1's step did not run again");
  assert.deepEqual(await stepStates(db), ["c1 done", "c2 done", "c3 done"], "c2's old error is cleared with its done");
  assert.deepEqual(await planState(db), { status: "done", error: "" });
  assert.deepEqual(counts(progress), ["1/3", "2/3", "3/3"], "progress counts the step done before");
  assert.deepEqual(calls, []);
});

test("a failing step is marked failed with its error, the others still run, and the plan fails naming the instance", async (t) => {
  const db = await cluster(t, ["c1", "c2", "c3"]);
  await recordPlan(db, stopSteps(["c1", "c2", "c3"]));
  // c2's row disappears between planning and execution.
  await db.exec([{ sql: "DELETE FROM instances WHERE project = 'default' AND name = 'c2'", expectChanges: 1 }]);
  const { agents, calls } = untouchableAgents();
  const { task, progress } = recordingTask();
  const log: string[] = [];

  await assert.rejects(
    executePlan(asCoordinator(db), agents, PLAN, "evacuate", task, (l) => log.push(l), stillCoordinator(db)),
    /^Error: Failed to evacuate 1 of 3 instances: "c2" in project "default": Instance not found$/,
  );

  assert.deepEqual(await stepStates(db), ["c1 done", "c2 failed: Instance not found", "c3 done"]);
  assert.deepEqual(await planState(db), { status: "failed", error: '"c2" in project "default": Instance not found' });
  assert.deepEqual(counts(progress), ["0/3", "1/3", "2/3"], "progress counts only the steps done");
  assert.ok(log.includes('evacuate step 1 failed: "c2" in project "default": Instance not found'), log.join("\n"));
  assert.deepEqual(calls, []);
});

test("a copy step whose instance already sits on its target (shared storage) only writes its done", async (t) => {
  // E.g. a deposed coordinator had relocated it: the instance row names member2 already.
  const db = await cluster(t, ["c1"], { pool: "shared" });
  await recordPlan(db, [{ project: "default", name: "c1", action: "copy", target: "member2", stopFirst: false, startAfter: false, origin: "member1", reason: "relocated (shared storage) to member2" }]);
  await db.exec([{ sql: "UPDATE instances SET node_id = 'n2' WHERE name = 'c1'", expectChanges: 1 }]);
  const { agents, calls } = untouchableAgents();
  const { task, progress } = recordingTask();

  await executePlan(asCoordinator(db), agents, PLAN, "evacuate", task, () => undefined, stillCoordinator(db));

  assert.deepEqual(await stepStates(db), ["c1 done"]);
  assert.deepEqual(await planState(db), { status: "done", error: "" });
  assert.deepEqual(progress, ["0/1: evacuating", '1/1: "c1" already on member2']);
  assert.deepEqual(calls, []);
});

// ---- known bug: a resumed copy step that finds a stale copy (see the test names) ----
//
// A resumed copy step that finds its instance already on its target deletes the stale
// copy elsewhere, and must still do what a move of its own would have done: start it
// on the target (when the step says so) and write the step's done. (Both were once
// skipped: "it moved" and "a stale copy was deleted" shared one variable.)

/**
 * Agents of members holding the instances `held` (address -> agent name -> power): just
 * enough of MemberClient for a copy step that finds its instance on its target. Cast
 * through unknown for the reason untouchableAgents gives.
 */
function agentsHolding(held: Map<string, Map<string, "STOPPED" | "RUNNING">>): AgentClients {
  const notFound = (name: string) => Object.assign(new Error(`Instance "${name}" not found`), { code: 5, details: `Instance "${name}" not found` });
  const member = (address: string): Pick<MemberClient, "deleteInstance" | "instanceState" | "startInstance"> => {
    const here = held.get(address) ?? new Map<string, "STOPPED" | "RUNNING">();
    return {
      async deleteInstance(name) {
        if (!here.has(name)) throw notFound(name);
        if (here.get(name) === "RUNNING") throw new Error(`Instance "${name}" is running`);
        here.delete(name);
        return DeleteInstanceReply.fromPartial({});
      },
      async instanceState(name) {
        if (!here.has(name)) throw notFound(name);
        return InstanceStateReply.fromPartial({ status: here.get(name) === "RUNNING" ? InstanceStatus.RUNNING : InstanceStatus.STOPPED });
      },
      async startInstance(name) {
        if (!here.has(name)) throw notFound(name);
        here.set(name, "RUNNING");
        return InstanceInfo.fromPartial({ name, status: InstanceStatus.RUNNING });
      },
    };
  };
  return { get: member } as unknown as AgentClients;
}

/** c1 was copied from member1 to member2 and the row switched; the old copy on member1 is still there. */
async function crashedAfterTheSwitch(t: TestContext, startAfter: boolean) {
  const db = await cluster(t, ["c1"]);
  await recordPlan(db, [{ project: "default", name: "c1", action: "copy", target: "member2", stopFirst: startAfter, startAfter, origin: "member1", reason: "copied (local storage) to member2" }]);
  await db.exec([{ sql: "UPDATE instances SET node_id = 'n2', config = ? WHERE name = 'c1'", params: [JSON.stringify({ "volatile.evacuate.origin": "member1" })], expectChanges: 1 }]);
  const held = new Map([
    ["10.0.0.1:8443", new Map([["c1", "STOPPED" as const]])],
    ["10.0.0.2:8443", new Map([["c1", "STOPPED" as const]])],
  ]);
  return { db, held, agents: agentsHolding(held) };
}

test(
  "a resumed copy+start step whose coordinator crashed between the switch and the start starts the instance on its target",
  async (t) => {
    const { db, held, agents } = await crashedAfterTheSwitch(t, true);

    await executePlan(asCoordinator(db), agents, PLAN, "evacuate", recordingTask().task, () => undefined, stillCoordinator(db));

    assert.deepEqual(await stepStates(db), ["c1 done"]);
    assert.equal(held.get("10.0.0.1:8443")!.has("c1"), false, "the stale copy on member1 is deleted");
    assert.equal((await db.query("SELECT power FROM instances WHERE name = 'c1'")).rows[0]![0], "RUNNING");
    assert.equal(held.get("10.0.0.2:8443")!.get("c1"), "RUNNING", "recorded RUNNING, so it must run on member2");
    // lxc monitor sees it: the lifecycle event is in the same batch, located where it runs, with no requestor.
    const events = (await db.query("SELECT body FROM events ORDER BY seq")).rows.map((r) => JSON.parse(String(r[0])) as { location: string; metadata: Record<string, unknown> });
    assert.deepEqual(
      events.map((e) => [e.metadata.action, e.metadata.source, e.location, "requestor" in e.metadata]),
      [["instance-started", "/1.0/instances/c1", "member2", false]],
    );
  },
);

test(
  "a copy step (no start) that finds its instance on its target and deletes a stale copy writes its done",
  async (t) => {
    const { db, held, agents } = await crashedAfterTheSwitch(t, false);

    await executePlan(asCoordinator(db), agents, PLAN, "evacuate", recordingTask().task, () => undefined, stillCoordinator(db));

    assert.equal(held.get("10.0.0.1:8443")!.has("c1"), false, "the stale copy on member1 is deleted");
    assert.deepEqual(await planState(db), { status: "done", error: "" });
    assert.deepEqual(await stepStates(db), ["c1 done"], "a done plan has every step done");
  },
);
