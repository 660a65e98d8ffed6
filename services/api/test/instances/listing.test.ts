// instanceListing (src/instances/listing.ts) behind GET /1.0/instances?recursion=1|2:
// one ListInstances per reachable member (brief for recursion=1, with states for
// recursion=2), profiles expanded, and the rows an agent cannot answer for shown as
// LXD shows them: Error for an offline or unreachable member or an instance its agent
// does not list, Stopped for one still being created. The database is the real state
// machine in memory (test/support/memory-database.ts); the agents are fakes that
// record what they were asked.
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { InstanceInfo, InstanceStateReply, InstanceStatus } from "../../../../proto/gen/member.ts";
import { ReadCache } from "../../src/cache/read-cache.ts";
import { insertInstanceStatement, listInstances, type InstanceRow } from "../../src/instances/instances.ts";
import { instanceListing, type ListingAgents } from "../../src/instances/listing.ts";
import { memoryDatabase } from "../support/memory-database.ts";

const HOUR_AGO = new Date(Date.now() - 3600_000).toISOString();

/** member1 and member2 online (member2's agent does not answer), member3 offline; one instance of each kind. */
async function cluster(t: TestContext) {
  const db = await memoryDatabase();
  t.after(() => db.close());
  const now = new Date().toISOString();
  const row = (name: string, nodeId: string, power = "RUNNING"): InstanceRow => ({
    project: "default", name, nodeId, agentName: name, type: "container", architecture: "x86_64", description: "", ephemeral: false,
    config: { "user.mine": "yes" }, devices: {}, profiles: ["default"], imageFingerprint: "f", createdAt: now, lastUsedAt: "", power, pool: "default",
  });
  await db.exec([
    { sql: "INSERT INTO members (node_id, name, address, architecture, heartbeat) VALUES ('n1', 'member1', 'a1', 'x86_64', ?)", params: [now] },
    { sql: "INSERT INTO members (node_id, name, address, architecture, heartbeat) VALUES ('n2', 'member2', 'a2', 'x86_64', ?)", params: [now] },
    { sql: "INSERT INTO members (node_id, name, address, architecture, heartbeat) VALUES ('n3', 'member3', 'a3', 'x86_64', ?)", params: [HOUR_AGO] },
    ...[row("up", "n1"), row("down", "n1", "STOPPED"), row("gone", "n1"), row("new", "n1", "CREATING"), row("far", "n2"), row("off", "n3")].map(insertInstanceStatement),
  ]);
  const state: InstanceStateReply = { ...InstanceStateReply.fromPartial({ statusText: "Running", statusCode: 103, pid: 4242, processes: 3 }), status: InstanceStatus.RUNNING };
  const info = (name: string, running: boolean, withState: boolean): InstanceInfo => ({
    ...InstanceInfo.fromPartial({ name, statusText: running ? "Running" : "Stopped", statusCode: running ? 103 : 102 }),
    status: running ? InstanceStatus.RUNNING : InstanceStatus.STOPPED,
    state: withState && running ? state : undefined,
  });
  const asked: string[] = [];
  const agents: ListingAgents = {
    get: (address) => ({
      listInstances: async (opts = {}) => {
        asked.push(`${address} ${opts.brief ? "brief" : ""}${opts.withState ? "withState" : ""}`);
        if (address !== "a1") throw new Error("unreachable");
        return [info("up", true, !!opts.withState), info("down", false, !!opts.withState)];
      },
    }),
  };
  // A cache whose Watch stream never goes live: every read goes to the database.
  const ctx = { db, cache: new ReadCache({ watch: () => () => undefined }) };
  return { ctx, agents, asked, rows: () => listInstances(db, "default") };
}

test("recursion=1: one brief ListInstances per member not offline; Error where the agent cannot say, Stopped while creating", async (t) => {
  const { ctx, agents, asked, rows } = await cluster(t);
  const out = await instanceListing(ctx, agents, rows(), false);
  assert.deepEqual(asked.sort(), ["a1 brief", "a2 brief"], "the offline member3 is not asked");
  const by = new Map(out.map((i) => [i.name, i]));
  assert.deepEqual(
    out.map((i) => [i.name, i.status, i.status_code, i.location]),
    [
      ["down", "Stopped", 102, "member1"],
      ["far", "Error", 112, "member2"],
      ["gone", "Error", 112, "member1"],
      ["new", "Stopped", 102, "member1"],
      ["off", "Error", 112, "member3"],
      ["up", "Running", 103, "member1"],
    ],
  );
  assert.equal(by.get("up")?.state, undefined);
  assert.deepEqual(by.get("up")?.expanded_config, { "user.mine": "yes" });
  assert.deepEqual(by.get("up")?.expanded_devices, { root: { path: "/", pool: "default", type: "disk" } }, "the default profile's root disk");
});

test("recursion=2: the states come with the one ListInstances per member; rows without one get an empty state", async (t) => {
  const { ctx, agents, asked, rows } = await cluster(t);
  const out = await instanceListing(ctx, agents, rows(), true);
  assert.deepEqual(asked.sort(), ["a1 withState", "a2 withState"]);
  const by = new Map(out.map((i) => [i.name, i]));
  assert.deepEqual([by.get("up")?.state?.status, by.get("up")?.state?.pid, by.get("up")?.state?.processes], ["Running", 4242, 3]);
  assert.deepEqual([by.get("down")?.state?.status, by.get("down")?.state?.pid], ["Stopped", 0]);
  assert.deepEqual([by.get("far")?.state?.status_code, by.get("off")?.state?.status_code, by.get("new")?.state?.status], [112, 112, "Stopped"]);
  assert.deepEqual([by.get("up")?.backups, by.get("up")?.snapshots], [null, null]);
});

test("a failed read of the rows fails the listing (no unhandled rejection while the agents answer)", async (t) => {
  const { ctx, agents } = await cluster(t);
  await assert.rejects(instanceListing(ctx, agents, Promise.reject(new Error("Project not found")), false), /Project not found/);
});
