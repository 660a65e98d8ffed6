// The lxc driver's pure parts: the generated config, limits, halt signal, id shift
// arithmetic and the /etc/subuid check. No containers needed.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { lxcConfig, haltSignal, rawLxcLines } from "../src/drivers/lxc/config.ts";
import { cgroupLines, parseCpus, parseMemory } from "../src/drivers/lxc/limits.ts";
import { delegatesToRoot } from "../src/drivers/lxc/host.ts";
import { attachArgs, shellQuote } from "../src/drivers/lxc/exec.ts";
import { DEFAULT_IDMAP, type InstanceRecord } from "../src/drivers/driver.ts";

const rec = (config: Record<string, string> = {}, props: Record<string, string> = {}): InstanceRecord => ({
  name: "c1",
  type: "container",
  architecture: "x86_64",
  imageFingerprint: "f".repeat(64),
  imageProperties: props,
  config,
  devices: {},
  createdAt: 0,
  idmap: DEFAULT_IDMAP,
});

describe("lxc config", () => {
  it("writes an unprivileged config with the id map, no network and the image's halt signal", () => {
    const text = lxcConfig(rec({}, { stop_signal: "SIGUSR2" }), { rootfs: "/p/c1/rootfs", idmap: DEFAULT_IDMAP, cgroup: 1 });
    assert.match(text, /^lxc\.rootfs\.path = dir:\/p\/c1\/rootfs$/m);
    assert.match(text, /^lxc\.idmap = u 0 1000000 65536$/m);
    assert.match(text, /^lxc\.idmap = g 0 1000000 65536$/m);
    assert.match(text, /^lxc\.net\.0\.type = empty$/m);
    assert.match(text, /^lxc\.signal\.halt = SIGUSR2$/m);
    assert.doesNotMatch(text, /cap\.drop/);
  });

  it("writes a privileged config without an id map", () => {
    const text = lxcConfig(rec({ "security.privileged": "true" }), { rootfs: "/r", idmap: null, cgroup: 2 });
    assert.doesNotMatch(text, /idmap/);
    assert.match(text, /cap\.drop/);
  });

  it("lets raw.lxc override the halt signal and refuses lines that are not lxc keys", () => {
    assert.equal(haltSignal(rec({ "raw.lxc": "lxc.signal.halt = SIGTERM" }, { stop_signal: "SIGUSR2" })), "SIGTERM");
    assert.equal(haltSignal(rec()), undefined);
    assert.throws(() => rawLxcLines("echo hi"), /Invalid raw.lxc/);
    assert.throws(() => haltSignal(rec({}, { stop_signal: "kill; rm" })), /Invalid stop signal/);
  });

  it("maps limits to the cgroup version's keys", () => {
    const cfg = { "limits.memory": "256MiB", "limits.cpu": "1", "limits.processes": "100" };
    assert.deepEqual(cgroupLines(cfg, 1), ["lxc.cgroup.memory.limit_in_bytes = 268435456", "lxc.cgroup.cpuset.cpus = 0", "lxc.cgroup.pids.max = 100"]);
    assert.deepEqual(cgroupLines(cfg, 2), ["lxc.cgroup2.memory.max = 268435456", "lxc.cgroup2.cpuset.cpus = 0", "lxc.cgroup2.pids.max = 100"]);
    assert.equal(parseMemory("1GB"), 1e9);
    assert.equal(parseMemory("50%", 1000 * 1024 * 1024), 500 * 1024 * 1024);
    assert.throws(() => parseMemory("1 potato"), /Invalid limits.memory/);
    assert.equal(parseCpus("4", 2), "0-1");
    assert.equal(parseCpus("0,1", 2), "0,1");
    assert.throws(() => parseCpus("0-7", 2), /has CPUs 0-1/);
  });

  it("checks /etc/subuid delegation to root", () => {
    assert.equal(delegatesToRoot("root:1000000:1000000000\n", 1_000_000, 65_536), true);
    assert.equal(delegatesToRoot("root:100000:65536\n", 1_000_000, 65_536), false);
    assert.equal(delegatesToRoot("", 1_000_000, 65_536), false);
  });

  it("builds lxc-attach arguments with a clean environment", () => {
    const args = attachArgs(
      { lxcpath: "/l", name: "c1", env: {}, bin: (t) => t },
      { command: ["echo", "hi"], env: { FOO: "bar" }, cwd: "/tmp", interactive: false, uid: 0, gid: 0 },
    );
    assert.deepEqual(args.slice(0, 9), ["-P", "/l", "-n", "c1", "--clear-env", "-u", "0", "-g", "0"]);
    assert.ok(args.includes("FOO=bar") && args.includes("HOME=/root"));
    assert.deepEqual(args.slice(args.indexOf("--") + 1), ["/bin/sh", "-c", 'cd "$0" && exec "$@"', "/tmp", "echo", "hi"]);
    assert.equal(shellQuote(["a b", "it's", "x"]), `'a b' 'it'\\''s' x`);
  });
});
