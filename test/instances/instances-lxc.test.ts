// Instances and images across members, with real processes (`shoal member` with the
// lxc driver, `shoal gateway`), real containers and the real `lxc` client: import the
// busybox test image on one member, launch on a chosen member and by default
// placement across three members (members without the image pull it from a holder),
// list with locations, info, stop/start/restart, delete, and the error cases.
// Every container is made by this test and removed by name (lxc delete, then
// lxc-stop -k on the members' own lxcpaths as a fallback).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LXC, monitor } from "../api/support.ts";
import { containerSuite } from "./support.ts";
import { lxcSkipReason } from "../../services/member/test/support/env.ts";

const skip = !existsSync(LXC) ? `${LXC} missing` : await lxcSkipReason();

describe("instances and images across members (real processes, real containers, real lxc)", { skip: skip ?? false }, () => {
  const MEMBERS = ["member1", "member2", "member3"];
  const s = containerSuite(MEMBERS);
  const { c, created, runWith, run, ok, fails, list } = s;
  const launch = async (name: string, ...extra: string[]) => {
    created.add(name);
    return ok("launch", "bb", name, ...extra);
  };

  test("GET /1.0 says the members run the lxc driver", async () => {
    const server = JSON.parse(await ok("query", "/1.0"));
    assert.equal(server.environment.driver, "lxc");
  });

  test("lxc image import --alias, list, show, alias create/list/delete", async () => {
    const out = await ok("image", "import", s.image.path, "--alias", "bb");
    assert.match(out, new RegExp(`Image imported with fingerprint: ${s.image.fingerprint}`));
    const images = JSON.parse(await ok("image", "list", "--format", "json"));
    assert.equal(images.length, 1);
    assert.equal(images[0].fingerprint, s.image.fingerprint);
    assert.equal(images[0].size, s.image.size);
    assert.deepEqual(images[0].aliases, [{ name: "bb", description: "" }]);
    assert.match(await ok("image", "show", "bb"), /auto_update: false/);
    await ok("image", "alias", "create", "bb2", s.image.fingerprint);
    assert.match(await ok("image", "alias", "list"), /bb2/);
    await ok("image", "alias", "delete", "bb2");
    assert.doesNotMatch(await ok("image", "alias", "list"), /bb2/);
    // The same file again: refused, nothing changes.
    assert.match(await fails("image", "import", s.image.path), /already exists/);
  });

  test("lxc launch --target: RUNNING on that member, with a pid; lxc info", async () => {
    await launch("c1", "--target", "member2");
    const c1 = (await list()).find((i) => i.name === "c1")!;
    assert.equal(c1.status, "Running");
    assert.equal(c1.location, "member2");
    assert.ok(c1.state && c1.state.pid > 0, JSON.stringify(c1.state));
    const info = await ok("info", "c1");
    assert.match(info, /Status: RUNNING/);
    assert.match(info, /Location: member2/);
  });

  test("default placement spreads launches over the members (members lacking the image pull it)", async () => {
    for (const name of ["c2", "c3", "c4"]) await launch(name);
    const all = await list();
    const per = new Map(MEMBERS.map((m) => [m, all.filter((i) => i.location === m).length]));
    assert.ok([...per.values()].every((n) => n >= 1), JSON.stringify([...per]));
    assert.ok(Math.max(...per.values()) - Math.min(...per.values()) <= 1, JSON.stringify([...per]));
    assert.ok(all.every((i) => i.status === "Running"), JSON.stringify(all.map((i) => [i.name, i.status])));
    const table = await ok("list");
    for (const i of all) assert.match(table, new RegExp(`\\| ${i.name} +\\| RUNNING .*\\| ${i.location} +\\|`));
  });

  test("stop, start, restart, stop --force", async () => {
    await ok("stop", "c1");
    assert.equal((await list()).find((i) => i.name === "c1")!.status, "Stopped");
    assert.match(await fails("stop", "c1"), /already stopped/);
    await ok("start", "c1");
    assert.equal((await list()).find((i) => i.name === "c1")!.status, "Running");
    assert.match(await fails("start", "c1"), /already running/);
    await ok("restart", "c1");
    assert.equal((await list()).find((i) => i.name === "c1")!.status, "Running");
    await ok("stop", "c1", "--force");
    assert.equal((await list()).find((i) => i.name === "c1")!.status, "Stopped");
  });

  test("lxc exec on instances of different members: output, stderr, exit codes, stdin", async () => {
    for (const i of (await list()).filter((x) => x.status === "Running")) {
      const r = await run("exec", i.name, "--", "sh", "-c", "echo out-$0; echo err >&2; exit 7", i.location);
      assert.equal(r.code, 7, r.stderr);
      assert.equal(r.stdout, `out-${i.location}\n`);
      assert.equal(r.stderr, "err\n");
    }
    const piped = await runWith("line one\nline two\n", "exec", "c2", "--", "wc", "-l");
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout.trim(), "2");
    assert.match(await fails("exec", "c1", "--", "true"), /not running/);
    assert.equal((await run("exec", "c2", "--", "nosuchcommand")).code, 127);
  });

  test("lxc init creates a stopped instance", async () => {
    created.add("c5");
    await ok("init", "bb", "c5", "--target", "member3");
    const c5 = (await list()).find((i) => i.name === "c5")!;
    assert.equal(c5.status, "Stopped");
    assert.equal(c5.location, "member3");
    await ok("config", "set", "c5", "limits.memory", "64MB");
    assert.equal((await ok("config", "get", "c5", "limits.memory")).trim(), "64MB");
  });

  test("lxc rename: a stopped instance changes name (its data with it); a new one may take the old name; errors", async () => {
    await ok("start", "c5");
    await ok("exec", "c5", "--", "sh", "-c", "echo kept > /root/marker");
    assert.match(await fails("rename", "c5", "c6"), /Renaming of running instance not allowed/);
    await ok("stop", "--force", "c5");
    created.add("c6");
    await ok("rename", "c5", "c6");
    created.delete("c5");
    const names = (await list()).map((i) => i.name);
    assert.ok(names.includes("c6") && !names.includes("c5"), names.join(","));
    assert.equal((await ok("config", "get", "c6", "limits.memory")).trim(), "64MB");
    await ok("start", "c6");
    assert.equal((await ok("exec", "c6", "--", "cat", "/root/marker")).trim(), "kept");
    // The old name is free again, on the same member too.
    await launch("c5", "--target", "member3");
    assert.equal((await list()).filter((i) => i.location === "member3" && ["c5", "c6"].includes(i.name)).length, 2);
    await ok("stop", "--force", "c6");
    assert.match(await fails("rename", "c6", "c5"), /Name "c5" already in use/);
    assert.match(await fails("rename", "c6", "bad_name"), /Invalid instance name/);
    assert.match(await fails("rename", "nosuch", "x"), /not found/i);
    await ok("delete", "--force", "c5");
    await ok("rename", "c6", "c5");
    created.delete("c6");
  });

  test("lxc launch --ephemeral: survives a restart, deleted when stopped", async () => {
    await launch("eph1", "--ephemeral", "--target", "member2");
    assert.equal(JSON.parse(await ok("query", "/1.0/instances/eph1")).ephemeral, true);
    await ok("restart", "--force", "eph1");
    assert.equal((await list()).find((i) => i.name === "eph1")?.status, "Running");
    await ok("stop", "--force", "eph1");
    assert.equal((await list()).find((i) => i.name === "eph1"), undefined);
    assert.match(await fails("info", "eph1"), /not found/i);
    created.delete("eph1");
  });

  test("an instance powered off from inside is recorded stopped (instance-shutdown at its member); an ephemeral one is deleted", async () => {
    await launch("self1", "--target", "member1");
    await launch("eph2", "--ephemeral", "--target", "member3");
    const mon = monitor(["--type=lifecycle", "--format", "json"], c.env, 60_000);
    await new Promise((r) => setTimeout(r, 500)); // let it connect
    // busybox's poweroff signals init, which shuts down (about 2 s).
    await run("exec", "self1", "--", "poweroff");
    await run("exec", "eph2", "--", "poweroff");
    const events = () =>
      mon
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { location?: string; metadata: { action?: string; source?: string } });
    const seen = (action: string, name: string) => events().find((e) => e.metadata.action === action && e.metadata.source === `/1.0/instances/${name}`);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !(seen("instance-shutdown", "self1") && seen("instance-deleted", "eph2"))) await new Promise((r) => setTimeout(r, 300));
    mon.stop();
    assert.equal(seen("instance-shutdown", "self1")?.location, "member1", `events: ${mon.output().slice(0, 2000)}`);
    assert.equal(seen("instance-shutdown", "eph2")?.location, "member3");
    assert.equal(seen("instance-deleted", "eph2")?.location, "member3");
    const rows = await list();
    assert.equal(rows.find((i) => i.name === "self1")?.status, "Stopped");
    assert.equal(rows.find((i) => i.name === "eph2"), undefined, "the ephemeral instance is gone");
    created.delete("eph2");
    await ok("start", "self1");
    assert.equal((await list()).find((i) => i.name === "self1")?.status, "Running");
    await ok("delete", "--force", "self1");
    created.delete("self1");
  });

  test("errors: unknown image, unknown member, unknown group, duplicate name, bad name", async () => {
    assert.match(await fails("launch", "nosuchimage", "e1"), /not found/i);
    assert.match(await fails("launch", "bb", "e2", "--target", "nosuchmember"), /Cluster member not found/);
    assert.match(await fails("launch", "bb", "e3", "--target", "@nosuchgroup"), /Cluster group "nosuchgroup" doesn't exist/);
    assert.match(await fails("launch", "bb", "c2"), /already exists/);
    assert.match(await fails("launch", "bb", "bad_name"), /Invalid instance name/);
    // A member holding instances is not removed (unless --force, which forgets them).
    assert.match(await fails("cluster", "remove", "member2"), /Node still has the following containers: .*c1/);
    const names = (await list()).map((i) => i.name).sort();
    assert.deepEqual(names, ["c1", "c2", "c3", "c4", "c5"]);
  });

  test("instances.placement.scriptlet decides where launches go; a failing one refuses the launch", async () => {
    // db-* pinned to member2; the rest to the member with the most free memory.
    const pin = [
      "def instance_placement(request, candidate_members):",
      '    if request.name.startswith("db-"):',
      '        set_target("member2")',
      "        return",
      "    best = candidate_members[0].server_name",
      "    most = -1",
      "    for m in candidate_members:",
      "        free = get_cluster_member_state(m.server_name).sysinfo.free_ram",
      "        if free > most:",
      "            best, most = m.server_name, free",
      '    log_info("%s to %s" % (request.name, best))',
      "    set_target(best)",
      "",
    ].join("\n");
    await ok("config", "set", "instances.placement.scriptlet", pin);
    try {
      for (const name of ["db-1", "db-2"]) {
        await launch(name);
        const got = (await list()).find((i) => i.name === name)!;
        assert.equal(got.location, "member2", `${name} should be pinned to member2`);
      }
      await launch("web-1");
      assert.ok(MEMBERS.includes((await list()).find((i) => i.name === "web-1")!.location));
      // An explicit target leaves member3 as the only candidate: pinning db-3 elsewhere fails.
      assert.match(await fails("launch", "bb", "db-3", "--target", "member3"), /Instance placement scriptlet failed: .*member2/);

      await ok("config", "set", "instances.placement.scriptlet", "def instance_placement(request, candidate_members):\n    log_warn('no opinion')\n");
      assert.match(await fails("launch", "bb", "undecided"), /Instance placement scriptlet failed: .*did not choose a member/);
      assert.ok(!(await list()).some((i) => i.name === "db-3" || i.name === "undecided"), "a refused launch creates nothing");
    } finally {
      await ok("config", "unset", "instances.placement.scriptlet");
      for (const name of ["db-1", "db-2", "web-1"]) {
        if ((await run("delete", "--force", name)).code === 0) created.delete(name);
      }
    }
  });

  test("lxc storage: a dir pool defined per member then created cluster-wide, a shared pool, launches on them, errors", async () => {
    // dir: member-specific sources first (PENDING), then the cluster-wide create.
    const local = join(c.dir, "local-pool-member1");
    await ok("storage", "create", "local", "dir", `source=${local}`, "--target", "member1");
    assert.match(await ok("storage", "list", "--format", "csv"), /^local,dir,,0,PENDING$/m);
    assert.match(await fails("storage", "create", "local", "dir", "source=/elsewhere"), /cluster member specific/);
    await ok("storage", "create", "local", "dir");
    assert.match(await ok("storage", "show", "local", "--target", "member1"), new RegExp(`^  source: ${local}$`, "m"));
    assert.match(await ok("storage", "show", "local", "--target", "member2"), /^  source: \/.*\/pools\/local$/m, "a member without a source gets a directory of its agent");
    // shared: one path every member mounts.
    const shared = join(c.dir, "shared-pool");
    await ok("storage", "create", "sh", "shared", `source=${shared}`);
    const pools = JSON.parse(await ok("storage", "list", "--format", "json")) as { name: string; driver: string; status: string; config: Record<string, string> }[];
    assert.deepEqual(pools.map((p) => [p.name, p.driver, p.status]), [["default", "dir", "Created"], ["local", "dir", "Created"], ["sh", "shared", "Created"]]);
    assert.equal(pools.find((p) => p.name === "sh")!.config.source, shared);
    const drivers = JSON.parse(await ok("query", "/1.0")).environment.storage_supported_drivers as { Name: string; Remote: boolean }[];
    assert.deepEqual(drivers.map((d) => [d.Name, d.Remote]), [["dir", false], ["shared", true]]);

    await launch("p1", "--target", "member1", "--storage", "local");
    await launch("p2", "--target", "member2", "--storage", "sh");
    assert.ok(existsSync(join(local, "containers", "p1")), "p1's rootfs is in the member-specific source");
    assert.ok(existsSync(join(shared, "containers", "p2")), "p2 lives on the shared path");
    assert.equal((await ok("exec", "p2", "--", "echo", "on-shared")).trim(), "on-shared");
    const sh = JSON.parse(await ok("query", "/1.0/storage-pools/sh"));
    assert.deepEqual(sh.used_by, ["/1.0/instances/p2"]);

    // Errors change nothing.
    assert.match(await fails("storage", "create", "sh", "shared", `source=${shared}`), /already exists/);
    assert.match(await fails("storage", "create", "x1", "zfs"), /driver "zfs" is not supported/);
    assert.match(await fails("storage", "create", "x1", "shared"), /needs "source"/);
    assert.match(await fails("storage", "create", "x1", "dir", "bogus.key=1"), /Invalid config key "bogus.key"/);
    assert.match(await fails("storage", "create", "x1", "shared", "source=relative"), /absolute path/);
    assert.match(await fails("storage", "set", "sh", "source", "/moved"), /cannot be changed/);
    assert.match(await fails("storage", "delete", "sh"), /currently in use/);
    assert.match(await fails("storage", "show", "nope"), /Storage pool not found/);
    created.add("p3");
    assert.match(await fails("launch", "bb", "p3", "--storage", "nope"), /not found/i);
    created.delete("p3");
    assert.deepEqual((await list()).filter((i) => i.name === "p3"), []);
    const edited = (await ok("storage", "show", "sh")).replace(/^description: .*$/m, "description: the shared one");
    const r = await runWith(edited, "storage", "edit", "sh");
    assert.equal(r.code, 0, r.stderr);
    assert.match(await ok("storage", "show", "sh"), /^description: the shared one$/m);

    for (const n of ["p1", "p2"]) {
      await ok("delete", "--force", n);
      created.delete(n);
    }
    assert.ok(!existsSync(join(shared, "containers", "p2")));
    await ok("storage", "delete", "sh");
    await ok("storage", "delete", "local");
    assert.match(await ok("storage", "list", "--format", "csv"), /^default,dir,,\d+,CREATED\n$/);
  });

  test("delete (a running one needs --force); the list is empty after", async () => {
    assert.match(await fails("delete", "c2"), /running/i);
    for (const name of ["c2", "c3", "c4"]) await ok("delete", "--force", name);
    await ok("delete", "c1");
    await ok("delete", "c5");
    assert.deepEqual(await list(), []);
    for (const name of ["c1", "c2", "c3", "c4", "c5"]) created.delete(name);
  });

  test("lxc image delete removes the image and its aliases", async () => {
    await ok("image", "delete", "bb");
    assert.deepEqual(JSON.parse(await ok("image", "list", "--format", "json")), []);
    assert.deepEqual(JSON.parse(await ok("image", "alias", "list", "--format", "json")), []);
  });
});
