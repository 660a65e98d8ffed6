// Moving, evacuating and restoring instances with real processes (`shoal member` with
// the lxc driver, `shoal gateway`), real containers and the real `lxc` 5.0.2 client:
// `lxc move NAME --target M` of a stopped instance (data written inside survives),
// then `lxc cluster evacuate member1 --force` with running and stopped instances on
// member1, on a `dir` pool and on a shared pool (everything lands elsewhere — copied
// from dir, relocated on the shared pool —, running ones running, data intact, member
// EVACUATED, new launches skip it, a second evacuate is refused) and
// `lxc cluster restore member1 --force` (exactly those instances come back, running
// as before, member ONLINE). Timings are printed, not asserted.
// Every container is made by this test and removed by name.
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LXC, monitor } from "../api/support.ts";
import { containerSuite } from "../instances/support.ts";
import { lxcSkipReason } from "../../services/member/test/support/env.ts";

const skip = !existsSync(LXC) ? `${LXC} missing` : await lxcSkipReason();

describe("move, evacuate and restore (real processes, real containers, real lxc)", { skip: skip ?? false }, () => {
  const MEMBERS = ["member1", "member2", "member3"];
  const s = containerSuite(MEMBERS, { timeoutMs: 120_000, importImage: true });
  const { c, created, run, ok, fails, list } = s;
  const byName = async () => new Map((await list()).map((i) => [i.name, i]));
  const launch = async (name: string, ...extra: string[]) => {
    created.add(name);
    return ok("launch", "bb", name, ...extra);
  };
  const write = (name: string, text: string) => ok("exec", name, "--", "sh", "-c", `echo ${text} > /root/marker; sync`);
  const read = async (name: string) => (await ok("exec", name, "--", "cat", "/root/marker")).trim();

  test("lxc move --target: a stopped instance's data moves; running, unknown, same member refused", async () => {
    await launch("mv1", "--target", "member1");
    await write("mv1", "moved-data");
    assert.match(await fails("move", "mv1", "--target", "member2"), /running/);
    await ok("stop", "mv1", "--force");
    assert.match(await fails("move", "mv1", "--target", "nosuchmember"), /Cluster member not found/);
    assert.match(await fails("move", "mv1", "--target", "member1"), /already on cluster member "member1"/);
    const t0 = Date.now();
    await ok("move", "mv1", "--target", "member2");
    process.stdout.write(`# lxc move of a stopped busybox container: ${Date.now() - t0} ms\n`);
    const mv1 = (await byName()).get("mv1")!;
    assert.equal(mv1.location, "member2");
    assert.equal(mv1.status, "Stopped");
    await ok("start", "mv1");
    assert.equal(await read("mv1"), "moved-data");
    // The old copy is gone from member1's agent: moving back works.
    await ok("stop", "mv1", "--force");
    await ok("move", "mv1", "--target", "member1");
    assert.equal((await byName()).get("mv1")!.location, "member1");
    await ok("delete", "mv1");
    created.delete("mv1");
  });

  test("cluster.evacuate is validated as an instance key", async () => {
    await launch("v1", "--target", "member3");
    assert.match(await fails("config", "set", "v1", "cluster.evacuate=bogus"), /Invalid value "bogus" \(not one of \[auto live-migrate migrate stop\]\)/);
    await ok("config", "set", "v1", "cluster.evacuate=auto");
    await ok("delete", "--force", "v1");
    created.delete("v1");
  });

  const RUNNING = ["r1", "r2", "r3", "sr1"];
  const STOPPED = ["s1", "ss1"];
  // On the shared pool `sh` (one path every member sees): relocated, not copied.
  const SHARED = new Set(["sr1", "ss1"]);
  const sharedPath = join(c.dir, "shared-pool");
  /** The inode of an instance's record on the shared path: the same file after a relocation. */
  const sharedInode = (n: string) => statSync(join(sharedPath, "containers", n, "instance.json")).ino;
  const inodes = new Map<string, number>();

  test("lxc cluster evacuate member1 --force: everything moves (dir: copied, shared: relocated), running ones running, data intact", async () => {
    await ok("storage", "create", "sh", "shared", `source=${sharedPath}`);
    for (const n of [...RUNNING, ...STOPPED]) {
      await launch(n, "--target", "member1", ...(SHARED.has(n) ? ["--storage", "sh"] : []));
      await write(n, `data-of-${n}`);
    }
    for (const n of SHARED) inodes.set(n, sharedInode(n));
    for (const n of STOPPED) await ok("stop", n, "--force");
    // lxc monitor sees what the coordinator does, located where it happens.
    const mon = monitor(["--type=lifecycle", "--format", "json"], c.env, 120_000);
    await new Promise((r) => setTimeout(r, 500)); // let it connect
    const t0 = Date.now();
    const out = await run("cluster", "evacuate", "member1", "--force");
    process.stdout.write(`# lxc cluster evacuate member1 (${RUNNING.length} running + ${STOPPED.length} stopped busybox containers): ${Date.now() - t0} ms\n`);
    assert.equal(out.code, 0, out.stderr);
    await new Promise((r) => setTimeout(r, 500)); // the events table is read every 100 ms
    mon.stop();
    const events = mon
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { location?: string; metadata: { action?: string; source?: string; context?: { old_location?: string } } });
    const lifecycle = (action: string, n: string) => events.find((e) => e.metadata.action === action && e.metadata.source === `/1.0/instances/${n}`);
    const all = await byName();
    for (const n of [...RUNNING, ...STOPPED]) {
      const i = all.get(n)!;
      assert.notEqual(i.location, "member1", `${n} should have left member1`);
      const migrated = lifecycle("instance-migrated", n);
      assert.equal(migrated?.location, i.location, `${n}: instance-migrated at its new member (events: ${mon.output().slice(0, 2000)})`);
      assert.equal(migrated?.metadata.context?.old_location, "member1");
      if (RUNNING.includes(n)) {
        assert.equal(lifecycle("instance-shutdown", n)?.location, "member1", `${n}: instance-shutdown on member1`);
        assert.equal(lifecycle("instance-started", n)?.location, i.location, `${n}: instance-started on its new member`);
      }
      assert.equal(i.status, RUNNING.includes(n) ? "Running" : "Stopped", n);
      assert.equal(i.config["volatile.evacuate.origin"], "member1", n);
    }
    // Spread rather than piled onto one member.
    const targets = new Set(RUNNING.map((n) => all.get(n)!.location));
    assert.equal(targets.size, 2, JSON.stringify([...all.values()].map((i) => [i.name, i.location])));
    for (const n of RUNNING) assert.equal(await read(n), `data-of-${n}`);
    for (const n of SHARED) assert.equal(sharedInode(n), inodes.get(n), `${n} relocated on the shared pool, not copied`);
    const m1 = (await c.members()).find((m) => m.server_name === "member1")!;
    assert.equal(m1.status, "Evacuated");
    assert.match(await ok("cluster", "list"), /member1 .*EVACUATED/);
  });

  test("an evacuated member takes no new instance; evacuating it again is refused", async () => {
    await launch("n1");
    assert.notEqual((await byName()).get("n1")!.location, "member1");
    created.add("n2");
    assert.match(await fails("launch", "bb", "n2", "--target", "member1"), /evacuated/i);
    created.delete("n2");
    assert.match(await fails("cluster", "evacuate", "member1", "--force"), /Cluster member is already evacuated/);
    assert.match(await fails("move", "n1", "--target", "member1"), /evacuated|running/);
  });

  test("lxc cluster restore member1 --force: exactly those instances come back, running as before", async () => {
    const t0 = Date.now();
    const out = await run("cluster", "restore", "member1", "--force");
    process.stdout.write(`# lxc cluster restore member1 (${RUNNING.length} running + ${STOPPED.length} stopped): ${Date.now() - t0} ms\n`);
    assert.equal(out.code, 0, out.stderr);
    const all = await byName();
    for (const n of [...RUNNING, ...STOPPED]) {
      const i = all.get(n)!;
      assert.equal(i.location, "member1", n);
      assert.equal(i.status, RUNNING.includes(n) ? "Running" : "Stopped", n);
      assert.equal(i.config["volatile.evacuate.origin"], undefined, n);
    }
    assert.notEqual(all.get("n1")!.location, "member1");
    for (const n of RUNNING) assert.equal(await read(n), `data-of-${n}`);
    for (const n of SHARED) assert.equal(sharedInode(n), inodes.get(n), `${n} relocated back, not copied`);
    const m1 = (await c.members()).find((m) => m.server_name === "member1")!;
    assert.equal(m1.status, "Online");
    assert.match(await fails("cluster", "restore", "member1", "--force"), /Cluster member is already restored/);
  });

  test("cluster.evacuate=stop keeps an instance in place, stopped; restore starts it again", async () => {
    await ok("config", "set", "r1", "cluster.evacuate=stop");
    await ok("cluster", "evacuate", "member1", "--force");
    let all = await byName();
    assert.equal(all.get("r1")!.location, "member1");
    assert.equal(all.get("r1")!.status, "Stopped");
    assert.equal(all.get("r2")!.status, "Running");
    assert.notEqual(all.get("r2")!.location, "member1");
    await ok("cluster", "restore", "member1", "--force");
    all = await byName();
    for (const n of RUNNING) {
      assert.equal(all.get(n)!.location, "member1", n);
      assert.equal(all.get(n)!.status, "Running", n);
    }
    assert.equal(all.get("s1")!.status, "Stopped");
  });

  test("instances.placement.scriptlet chooses evacuation targets (reason evacuation); a failing one refuses the evacuation", async () => {
    const toMember3 = [
      "def instance_placement(request, candidate_members):",
      '    if request.reason == "evacuation":',
      '        set_target("member3")',
      "        return",
      "    set_target(candidate_members[0].server_name)",
      "",
    ].join("\n");
    await ok("config", "set", "instances.placement.scriptlet", toMember3);
    try {
      await ok("config", "unset", "r1", "cluster.evacuate");
      await ok("cluster", "evacuate", "member1", "--force");
      let all = await byName();
      for (const n of RUNNING) assert.equal(all.get(n)!.location, "member3", `${n} should follow the scriptlet to member3`);
      await ok("cluster", "restore", "member1", "--force");
      all = await byName();
      for (const n of RUNNING) assert.equal(all.get(n)!.location, "member1", n);

      await ok("config", "set", "instances.placement.scriptlet", "def instance_placement(request, candidate_members):\n    fail('maintenance freeze')\n");
      const refused = await run("cluster", "evacuate", "member1", "--force");
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /Instance placement scriptlet failed for .*maintenance freeze/);
      const after = await c.members();
      assert.equal(after.find((m) => m.server_name === "member1")!.status, "Online", "a refused evacuation changes nothing");
    } finally {
      await ok("config", "unset", "instances.placement.scriptlet");
    }
  });

  test("cleanup: delete every instance this test made", async () => {
    for (const n of [...created]) {
      await ok("delete", "--force", n);
      created.delete(n);
    }
    assert.deepEqual(await list(), []);
  });
});
