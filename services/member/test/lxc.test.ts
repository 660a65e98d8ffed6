// Real containers through the lxc driver (Debian's lxc tools), from the busybox
// test image: lifecycle, exec, the halt signal, the unprivileged id map, limits.
// Skips — saying exactly why — where LXC cannot run.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Member } from "../src/agent/member.ts";
import { LxcDriver } from "../src/drivers/lxc/lxc-driver.ts";
import type { ExecOptions } from "../src/drivers/driver.ts";
import { buildBusyboxImage, type BusyboxImage } from "./support/busybox-image.ts";
import { killContainer, lxcSkipReason, tempDir } from "./support/env.ts";

const skip = await lxcSkipReason();

async function collect(m: Member, name: string, command: string[], extra: Partial<ExecOptions> & { stdin?: string } = {}) {
  const { stdin, ...rest } = extra;
  const p = await m.exec(name, { command, env: {}, cwd: "", interactive: false, uid: 0, gid: 0, ...rest });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  p.stdout.on("data", (b: Buffer) => out.push(b));
  p.stderr.on("data", (b: Buffer) => err.push(b));
  if (stdin !== undefined) p.writeStdin(Buffer.from(stdin));
  p.closeStdin();
  const code = await p.exited;
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

describe("lxc driver: real containers", { skip }, () => {
  const dir = tempDir("lxc");
  const lxcpath = join(dir.path, "lxc");
  let img: BusyboxImage;
  let m: Member;
  const created = new Set<string>();

  before(async () => {
    img = buildBusyboxImage();
    m = new Member({ name: "m1", dir: dir.path, driver: new LxcDriver(lxcpath) });
    await m.init();
    await m.images.importFile(img.path, { expectedFingerprint: img.fingerprint });
  });
  after(() => {
    for (const name of created) killContainer(lxcpath, name);
    img?.cleanup();
    dir.cleanup();
  });

  it("runs the lifecycle: create, start, state, exec, stop (clean, by the halt signal), restart, delete", async () => {
    created.add("c1");
    const v = await m.create({ name: "c1", imageFingerprint: img.fingerprint, createdAt: 1_700_000_000_000 });
    assert.equal(v.status, "Stopped");
    assert.equal(v.statusCode, 102);
    assert.equal(v.record.architecture, "x86_64");

    const rootfs = join(dir.path, "pools/default/containers/c1/rootfs");
    // Unprivileged: the rootfs is shifted into the id map (container root = host 1000000).
    assert.equal(statSync(join(rootfs, "bin/busybox")).uid, 1_000_000);
    assert.equal(lstatSync(join(rootfs, "sbin/init")).uid, 1_000_000);
    assert.equal(statSync(join(rootfs, "etc/passwd")).gid, 1_000_000);
    assert.equal(statSync(join(rootfs, "tmp")).mode & 0o7777, 0o1777);

    const started = await m.start("c1");
    assert.equal(started.status, "Running");
    const config = readFileSync(join(lxcpath, "c1/config"), "utf8");
    assert.match(config, /^lxc\.idmap = u 0 1000000 65536$/m);
    assert.match(config, /^lxc\.idmap = g 0 1000000 65536$/m);
    assert.match(config, /^lxc\.net\.0\.type = empty$/m);
    assert.match(config, /^lxc\.signal\.halt = SIGUSR2$/m);

    const st = await m.state("c1");
    assert.equal(st.status, "Running");
    assert.ok(st.pid > 1, `pid ${st.pid}`);
    assert.ok(st.processes >= 1, `processes ${st.processes}`);
    // The container's init runs as host uid 1000000.
    const status = readFileSync(`/proc/${st.pid}/status`, "utf8");
    assert.match(status, /^Uid:\s+1000000\s/m);

    const hi = await collect(m, "c1", ["echo", "hi"]);
    assert.deepEqual(hi, { code: 0, stdout: "hi\n", stderr: "" });
    assert.equal((await collect(m, "c1", ["sh", "-c", "exit 7"])).code, 7);
    const cat = await collect(m, "c1", ["cat"], { stdin: "piped through\n" });
    assert.equal(cat.stdout, "piped through\n");
    const both = await collect(m, "c1", ["sh", "-c", "echo out; echo err >&2; id -u"]);
    assert.equal(both.stdout, "out\n0\n");
    assert.equal(both.stderr, "err\n");
    const env = await collect(m, "c1", ["sh", "-c", 'echo "$FOO:$PWD"'], { env: { FOO: "bar" }, cwd: "/tmp" });
    assert.equal(env.stdout, "bar:/tmp\n");
    assert.equal((await collect(m, "c1", ["no-such-command"])).code, 127);

    const stop = await m.stop("c1", 10_000);
    assert.equal(stop.clean, true, "stopped by the halt signal, not killed");
    assert.ok(stop.elapsedMs < 8_000, `clean stop took ${stop.elapsedMs} ms`);
    assert.equal(stop.view.status, "Stopped");

    await m.start("c1");
    const r = await m.restart("c1", 10_000);
    assert.equal(r.clean, true);
    assert.equal(r.view.status, "Running");
    assert.equal((await collect(m, "c1", ["cat", "/etc/hello.txt"])).stdout, "hello from busybox\n");

    await assert.rejects(m.delete("c1"), /currently running/);
    await m.delete("c1", true);
    created.delete("c1");
    assert.ok(!existsSync(join(dir.path, "pools/default/containers/c1")));
    assert.ok(!existsSync(join(lxcpath, "c1")));
    assert.deepEqual(await m.list(), []);
  });

  it("delivers signals to an exec'd command (128+N) and a stopped instance refuses exec", async () => {
    created.add("c2");
    await m.create({ name: "c2", imageFingerprint: img.fingerprint });
    await assert.rejects(collect(m, "c2", ["true"]), /not running/);
    await m.start("c2");
    const p = await m.exec("c2", { command: ["sleep", "60"], env: {}, cwd: "", interactive: false, uid: 0, gid: 0 });
    setTimeout(() => p.signal(15), 200);
    assert.equal(await p.exited, 128 + 15);
    await m.stop("c2", 0, true);
    await m.delete("c2");
    created.delete("c2");
  });

  it("gives an interactive command a terminal of the asked size", async () => {
    created.add("c3");
    await m.create({ name: "c3", imageFingerprint: img.fingerprint });
    await m.start("c3");
    const r = await collect(m, "c3", ["sh", "-c", "stty size; tty"], { interactive: true, window: { width: 100, height: 40 } });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^40 100\r*\n\/dev\/pts\/\d+/);
    await m.delete("c3", true);
    created.delete("c3");
  });

  it("runs a privileged instance without an id map, and applies limits.memory", async () => {
    created.add("p1");
    await m.create({ name: "p1", imageFingerprint: img.fingerprint, config: { "security.privileged": "true", "limits.memory": "64MiB" } });
    const rootfs = join(dir.path, "pools/default/containers/p1/rootfs");
    assert.equal(statSync(join(rootfs, "bin/busybox")).uid, 0);
    await m.start("p1");
    const config = readFileSync(join(lxcpath, "p1/config"), "utf8");
    assert.doesNotMatch(config, /lxc\.idmap/);
    assert.match(config, /memory\.(limit_in_bytes|max) = 67108864/);
    const st = await m.state("p1");
    assert.match(readFileSync(`/proc/${st.pid}/status`, "utf8"), /^Uid:\s+0\s/m);
    // The limit as the kernel applies it, read from the container's own cgroup.
    const cg = readFileSync(`/proc/${st.pid}/cgroup`, "utf8");
    const v1 = /^\d+:memory:(.*)$/m.exec(cg)?.[1];
    const limitFile = v1 !== undefined ? `/sys/fs/cgroup/memory${v1}/memory.limit_in_bytes` : `/sys/fs/cgroup${/^0::(.*)$/m.exec(cg)?.[1]}/memory.max`;
    assert.equal(readFileSync(limitFile, "utf8").trim(), "67108864");
    await m.stop("p1", 10_000);
    // Becoming unprivileged shifts the rootfs at the next start.
    await m.update("p1", {}, {});
    await m.start("p1");
    assert.equal(statSync(join(rootfs, "bin/busybox")).uid, 1_000_000);
    await m.delete("p1", true);
    created.delete("p1");
  });

  it("refuses bad config before touching anything", async () => {
    await assert.rejects(m.create({ name: "bad", imageFingerprint: img.fingerprint, config: { "limits.memory": "lots" } }), /Invalid limits.memory/);
    await assert.rejects(m.create({ name: "bad", imageFingerprint: img.fingerprint, config: { "raw.lxc": "rm -rf /" } }), /Invalid raw.lxc/);
    await assert.rejects(m.create({ name: "1bad", imageFingerprint: img.fingerprint }), /Invalid instance name/);
    await assert.rejects(m.create({ name: "bad", imageFingerprint: "0".repeat(64) }), /not found/);
    assert.ok(!existsSync(join(dir.path, "pools/default/containers/bad")));
  });
});
