// instances.placement.scriptlet with the real lxc: checked when set (refused with
// the line), tried against the live cluster with `shoal scriptlet test`, its logs
// delivered as `logging` events to `lxc monitor`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { LXC } from "../api/support.ts";
import { TestCluster, waitUntil } from "./support.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const SHOAL = join(ROOT, "services/api/src/shoal.ts");

// Pins db-* to member2; spreads the rest by free memory (ties: the first listed).
const PIN_AND_SPREAD = `
def instance_placement(request, candidate_members):
    if request.name.startswith("db-"):
        log_info("pinning %s to member2" % request.name)
        set_target("member2")
        return
    best = None
    best_free = -1
    for m in candidate_members:
        state = get_cluster_member_state(m.server_name)
        free = state.sysinfo.free_ram
        if free > best_free:
            best = m.server_name
            best_free = free
    log_info("%s goes to %s (%d bytes free)" % (request.name, best, best_free))
    set_target(best)
`;

function shoal(args: string[], dir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ["--import", "tsx", SHOAL, ...args, "--dir", dir], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
    p.on("exit", (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

describe("placement scriptlets (real processes, real lxc)", { skip: existsSync(LXC) ? false : `${LXC} missing` }, () => {
  const c = new TestCluster();
  const file = (name: string, text: string) => {
    const path = join(c.dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(async () => {
    await c.bootstrap("member1");
    for (const name of ["member2", "member3"]) await c.join(name, await c.token(name));
  });
  after(() => c.close());

  test("setting the key checks the scriptlet: errors name the line; a valid one is stored", async () => {
    const syntax = await c.lxc("config", "set", "instances.placement.scriptlet", "def instance_placement(request, candidate_members):\n    if x\n        pass\n");
    assert.notEqual(syntax.code, 0);
    assert.match(syntax.stderr, /cannot set 'instances\.placement\.scriptlet': Invalid placement scriptlet: scriptlet:2:/);
    const missing = await c.lxc("config", "set", "instances.placement.scriptlet", "def place(a, b):\n    pass\n");
    assert.match(missing.stderr, /no function instance_placement/);
    assert.equal((await c.lxc("config", "get", "instances.placement.scriptlet")).stdout.trim(), "");

    const ok = await c.lxc("config", "set", "instances.placement.scriptlet", PIN_AND_SPREAD);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await c.lxc("config", "get", "instances.placement.scriptlet")).stdout.trim(), PIN_AND_SPREAD.trim());
  });

  test("shoal scriptlet test: db-* is pinned, the rest spread by free memory; logs reach lxc monitor", async () => {
    const monitor = spawn(LXC, ["monitor", "--type", "logging"], { env: { PATH: process.env.PATH, HOME: c.env.LXD_CONF, ...c.env }, stdio: ["ignore", "pipe", "pipe"] });
    let seen = "";
    monitor.stdout.on("data", (d: Buffer) => (seen += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1_000)); // the monitor's websocket is up
      const pinned = await shoal(["scriptlet", "test", "--name", "db-1"], c.env.LXD_DIR);
      assert.equal(pinned.code, 0, pinned.stderr);
      assert.match(pinned.stdout, /^candidates: member1, member2, member3$/m);
      assert.match(pinned.stdout, /^log info: pinning db-1 to member2$/m);
      assert.match(pinned.stdout, /^decision: member2$/m);

      const spread = await shoal(["scriptlet", "test", "--name", "web-1"], c.env.LXD_DIR);
      assert.equal(spread.code, 0, spread.stderr);
      assert.match(spread.stdout, /^log info: web-1 goes to member\d \(\d+ bytes free\)$/m);
      assert.match(spread.stdout, /^decision: member\d$/m);

      await waitUntil("the scriptlet's log as a logging event", 10_000, () => seen.includes("pinning db-1 to member2"));
      assert.match(seen, /level: info/);
    } finally {
      monitor.kill("SIGKILL");
    }
  });

  test("a scriptlet that sets no target, or an invalid one, fails with a clear error", async () => {
    const silent = await shoal(["scriptlet", "test", file("silent.star", "def instance_placement(request, candidate_members):\n    log_warn('undecided')\n")], c.env.LXD_DIR);
    assert.equal(silent.code, 1);
    assert.match(silent.stdout, /^log warn: undecided$/m);
    assert.match(silent.stdout, /^error: .*set_target/m);

    const wrong = await shoal(["scriptlet", "test", file("wrong.star", "def instance_placement(request, candidate_members):\n    set_target('member9')\n")], c.env.LXD_DIR);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stdout, /^error: scriptlet:2:\d+: .*member9/m);

    const broken = await shoal(["scriptlet", "test", file("broken.star", "def instance_placement(request):\n    pass\n")], c.env.LXD_DIR);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /Invalid placement scriptlet: .*2 arguments/);
  });
});
