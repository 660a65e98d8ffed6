// The coordinator dies in the middle of an evacuation: the next Raft leader's
// coordinator takes the plan over and finishes it, with every instance accounted for
// (each exactly once, where the plan sent it, running if it ran, its data intact).
// Four members: the leader (killed) is neither the evacuated member nor the target,
// so what is killed is the coordinator alone; a placement scriptlet sends every
// evacuated instance to one member so the outcome is exact.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LXC } from "../api/support.ts";
import { waitUntil } from "../cluster/support.ts";
import { containerSuite } from "../instances/support.ts";
import { lxcSkipReason } from "../../services/member/test/support/env.ts";

const skip = !existsSync(LXC) ? `${LXC} missing` : await lxcSkipReason();

describe("evacuation survives the coordinator's death (real processes, real containers, real lxc)", { skip: skip ?? false }, () => {
  const MEMBERS = ["member1", "member2", "member3", "member4"];
  const RUNNING = ["k1", "k2", "k3"];
  const STOPPED = ["k4"];
  const s = containerSuite(MEMBERS, { timeoutMs: 120_000, importImage: true });
  const { c, created, run, ok, list } = s;

  test("SIGKILL of the coordinator mid-evacuation: the next leader finishes the plan", async () => {
    const members = await c.members();
    const leader = members.find((m) => m.roles.includes("database-leader"))!.server_name;
    const [source, target] = MEMBERS.filter((m) => m !== leader);
    await ok("config", "set", "instances.placement.scriptlet", `def instance_placement(request, candidate_members):\n    set_target("${target}" if request.reason == "evacuation" else candidate_members[0].server_name)\n`);
    for (const name of [...RUNNING, ...STOPPED]) {
      created.add(name);
      await ok(STOPPED.includes(name) ? "init" : "launch", "bb", name, "--target", source);
      if (!STOPPED.includes(name)) await ok("exec", name, "--", "sh", "-c", `echo ${name}-data > /root/marker; sync`);
    }

    const started = JSON.parse(await ok("query", "-X", "POST", "-d", '{"action":"evacuate","mode":""}', `/1.0/cluster/members/${source}/state`));
    const opId = String(started.id);
    // Kill the coordinator once the plan is under way (a step done, the rest not).
    let progress = "";
    await waitUntil("the evacuation to be under way", 60_000, async () => {
      const op = JSON.parse(await ok("query", `/1.0/operations/${opId}`));
      progress = String(op.metadata?.evacuation_progress ?? "");
      return /^[1-9]\d*\//.test(progress) || op.status_code >= 200;
    }, 50);
    const t0 = Date.now();
    c.kill(leader);
    process.stdout.write(`# killed the coordinator (${leader}) at "${progress}"\n`);

    let final: { status_code: number; err: string; metadata: Record<string, unknown> } | undefined;
    await waitUntil("the evacuation to finish under the next coordinator", 90_000, async () => {
      const r = await run("query", `/1.0/operations/${opId}`);
      if (r.code !== 0) return false;
      final = JSON.parse(r.stdout);
      return final!.status_code >= 200;
    }, 200);
    process.stdout.write(`# finished ${Date.now() - t0} ms after the kill: ${JSON.stringify(final!.metadata)}\n`);
    assert.equal(final!.status_code, 200, `operation ended ${final!.status_code}: ${final!.err}`);

    // Every instance exactly once, on the target, running if it ran, data intact.
    const all = await list();
    for (const name of [...RUNNING, ...STOPPED]) {
      const found = all.filter((i) => i.name === name);
      assert.equal(found.length, 1, `${name} listed ${found.length} times`);
      assert.equal(found[0].location, target, `${name} on ${found[0].location}`);
      assert.equal(found[0].status, STOPPED.includes(name) ? "Stopped" : "Running", name);
      assert.equal(found[0].config["volatile.evacuate.origin"], source, name);
    }
    for (const name of RUNNING) assert.equal((await ok("exec", name, "--", "cat", "/root/marker")).trim(), `${name}-data`);
    // Nothing of them is left running on the evacuated member.
    const leftover = execFileSync("lxc-ls", ["-P", join(c.memberDir(source), "agent", "lxc"), "--running"], { encoding: "utf8" }).split(/\s+/).filter(Boolean);
    for (const name of [...RUNNING, ...STOPPED]) assert.ok(!leftover.some((l) => l.includes(name)), `${name} still runs on ${source}: ${leftover.join(" ")}`);
    const now = await c.members();
    assert.equal(now.find((m) => m.server_name === source)!.status, "Evacuated");

    await ok("config", "unset", "instances.placement.scriptlet");
    for (const name of [...RUNNING, ...STOPPED]) {
      await ok("delete", "--force", name);
      created.delete(name);
    }
  });
});
