// Two member agents in one process (different directories), over gRPC with mutual
// TLS and the shared cluster certificate: instance lifecycle and the exec stream
// with real containers, migration of a stopped instance between agents (data
// intact, unprivileged owners kept), a checksum mismatch rolled back, peer image
// pulls, relocation on a shared pool, and a stranger's certificate refused.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { MemberClient } from "../src/agent/client.ts";
import { runMemberAgent, type RunningMemberAgent } from "../src/agent/main.ts";
import type { InstanceChunk } from "../../../proto/gen/member.ts";
import type { TlsConfig } from "../../raft/src/transport/credentials.ts";
import { buildBusyboxImage, busyboxMissing, type BusyboxImage } from "./support/busybox-image.ts";
import { clusterTls, killContainer, lxcSkipReason, tempDir } from "./support/env.ts";

const lxcSkip = await lxcSkipReason();
const imageSkip = busyboxMissing();

function code(err: unknown): number | undefined {
  return (err as grpc.ServiceError).code;
}

describe("member agent over gRPC + mTLS", { skip: imageSkip && `no test image: ${imageSkip}` }, () => {
  const dirs = [tempDir("agent-a"), tempDir("agent-b"), tempDir("shared")];
  let tls: TlsConfig;
  let img: BusyboxImage;
  let a: RunningMemberAgent;
  let b: RunningMemberAgent;
  let ca: MemberClient;
  let cb: MemberClient;
  const containers: [string, string][] = [];

  before(async () => {
    tls = await clusterTls();
    img = buildBusyboxImage();
    const driver = lxcSkip ? "simulated" : "lxc";
    const shared = { name: "shared", driver: "shared" as const, source: dirs[2].path };
    a = await runMemberAgent({ dir: dirs[0].path, name: "m1", listen: "127.0.0.1:0", tls, driver, pools: [{ name: "default", driver: "dir", source: join(dirs[0].path, "pools/default") }, shared] });
    b = await runMemberAgent({ dir: dirs[1].path, name: "m2", listen: "127.0.0.1:0", tls, driver, pools: [{ name: "default", driver: "dir", source: join(dirs[1].path, "pools/default") }, shared] });
    ca = new MemberClient(a.address, tls);
    cb = new MemberClient(b.address, tls);
    await ca.importImageFile(img.path, { fingerprint: img.fingerprint, filename: "busybox.tar.gz" });
  });
  after(async () => {
    for (const [lxcpath, name] of containers) killContainer(lxcpath, name);
    ca?.close();
    cb?.close();
    await a?.close();
    await b?.close();
    img?.cleanup();
    for (const d of dirs) d.cleanup();
  });

  it("reports the member, its driver and resources (heartbeat)", async () => {
    const hb = await ca.heartbeat("m0", 3);
    assert.equal(hb.member, "m1");
    assert.equal(hb.driver, lxcSkip ? "simulated" : "lxc");
    assert.deepEqual(hb.fingerprints, [img.fingerprint]);
    assert.ok(hb.cpuCount >= 1 && hb.memoryTotal > 0);
    const r = await ca.resources();
    assert.equal(r.architecture, hb.architecture);
    assert.deepEqual(r.pools.map((p) => [p.name, p.driver, p.remote]), [["default", "dir", false], ["shared", "shared", true]]);
    assert.ok(r.pools[0].total > 0);
  });

  it("refuses a client whose certificate is not the cluster's", async () => {
    const stranger = new MemberClient(a.address, { ...(await clusterTls()), ca: tls.ca });
    try {
      await assert.rejects(stranger.heartbeat(), (err) => code(err) === grpc.status.UNAVAILABLE);
    } finally {
      stranger.close();
    }
  });

  it("refuses an image whose bytes do not match the fingerprint", async () => {
    await assert.rejects(
      ca.importImage([Buffer.from("not the image")], { fingerprint: img.fingerprint }),
      (err) => code(err) === grpc.status.DATA_LOSS && /fingerprint mismatch/.test((err as grpc.ServiceError).details),
    );
  });

  it("pulls an image from a peer, verified", async () => {
    assert.equal((await cb.hasImage(img.fingerprint)).present, false);
    const info = await cb.pullImage(img.fingerprint, a.address);
    assert.equal(info.fingerprint, img.fingerprint);
    assert.equal(info.filename, "busybox.tar.gz");
    const has = await cb.hasImage(img.fingerprint);
    assert.equal(has.present, true);
    assert.equal(has.image?.properties.os, "busybox");
  });

  it("creates, starts, execs (stream), stops and deletes an instance", { skip: lxcSkip }, async () => {
    containers.push([join(dirs[0].path, "lxc"), "g1"]);
    const created = await ca.createInstance({ name: "g1", imageFingerprint: img.fingerprint, createdAt: 1_700_000_000_000 });
    assert.equal(created.statusText, "Stopped");
    assert.equal(created.location, "m1");
    assert.equal(created.createdAt, 1_700_000_000_000);
    await assert.rejects(ca.createInstance({ name: "g1", imageFingerprint: img.fingerprint }), (err) => code(err) === grpc.status.ALREADY_EXISTS);
    assert.equal((await ca.startInstance("g1")).statusText, "Running");
    const st = await ca.instanceState("g1");
    assert.equal(st.statusCode, 103);
    assert.ok(st.pid > 1);

    assert.deepEqual(await ca.run("g1", ["echo", "hi"]), { exitCode: 0, stdout: Buffer.from("hi\n"), stderr: Buffer.alloc(0) });
    assert.equal((await ca.run("g1", ["sh", "-c", "exit 7"])).exitCode, 7);
    // stdin streamed in pieces, echoed back by cat.
    const seen: string[] = [];
    const s = ca.exec({ name: "g1", command: ["cat"] }, { onStdout: (b) => seen.push(b.toString()) });
    s.write("one\n");
    s.write("two\n");
    s.closeStdin();
    const r = await s.result;
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.toString(), "one\ntwo\n");
    // A signal through the stream.
    const sleeper = ca.exec({ name: "g1", command: ["sleep", "60"] });
    setTimeout(() => sleeper.signal(9), 200);
    assert.equal((await sleeper.result).exitCode, 137);

    // Listings: brief (name and status, no record read) and with each instance's state (recursion=2).
    assert.deepEqual((await ca.listInstances({ brief: true })).map((i) => [i.name, i.statusText, i.statusCode, i.imageFingerprint, i.state]), [["g1", "Running", 103, "", undefined]]);
    const [withState] = await ca.listInstances({ withState: true });
    assert.deepEqual([withState.name, withState.statusText, withState.imageFingerprint, withState.state?.statusCode, withState.state?.pid], ["g1", "Running", img.fingerprint, 103, st.pid]);
    assert.equal((await ca.listInstances())[0].state, undefined);

    const stop = await ca.stopInstance("g1", { timeoutMs: 10_000 });
    assert.equal(stop.clean, true);
    assert.equal(stop.instance?.statusText, "Stopped");
    await ca.deleteInstance("g1");
    await assert.rejects(ca.instanceState("g1"), (err) => code(err) === grpc.status.NOT_FOUND);
    assert.deepEqual(await ca.listInstances(), []);
  });

  it("moves a stopped instance to another member with its data, and rolls back a bad checksum", { skip: lxcSkip }, async () => {
    containers.push([join(dirs[0].path, "lxc"), "mv1"], [join(dirs[1].path, "lxc"), "mv1"]);
    await ca.createInstance({ name: "mv1", imageFingerprint: img.fingerprint });
    await ca.startInstance("mv1");
    assert.equal((await ca.run("mv1", ["sh", "-c", "echo precious > /root/data.txt && chmod 600 /root/data.txt"])).exitCode, 0);
    // Sending a running instance is refused.
    await assert.rejects(ca.copyInstanceTo(cb, "mv1"), (err) => code(err) === grpc.status.FAILED_PRECONDITION);
    await ca.stopInstance("mv1", { timeoutMs: 10_000 });

    // A stream whose trailer lies: refused with DATA_LOSS, nothing left on the target.
    const chunks: InstanceChunk[] = [];
    for await (const c of ca.sendInstance("mv1")) chunks.push(c);
    assert.equal(chunks[0].chunk?.$case, "header");
    assert.equal(chunks[chunks.length - 1].chunk?.$case, "trailer");
    const tampered = chunks.map((c) => (c.chunk?.$case === "trailer" ? { chunk: { $case: "trailer" as const, value: { ...c.chunk.value, sha256: "0".repeat(64) } } } : c));
    await assert.rejects(cb.receiveInstance(tampered), (err) => code(err) === grpc.status.DATA_LOSS);
    const containersB = join(dirs[1].path, "pools/default/containers");
    assert.deepEqual(readdirSync(containersB), []);
    // A stream cut before its trailer: refused too, nothing left.
    await assert.rejects(cb.receiveInstance(chunks.slice(0, -1)), (err) => code(err) === grpc.status.INVALID_ARGUMENT);
    assert.deepEqual(readdirSync(containersB), []);

    const moved = await ca.copyInstanceTo(cb, "mv1");
    assert.equal(moved.location, "m2");
    await ca.deleteInstance("mv1");
    const rootB = join(containersB, "mv1/rootfs");
    assert.equal(statSync(join(rootB, "root/data.txt")).uid, 1_000_000);
    await cb.startInstance("mv1");
    const r = await cb.run("mv1", ["cat", "/root/data.txt"]);
    assert.equal(r.stdout.toString(), "precious\n");
    await cb.deleteInstance("mv1", true);
  });

  it("moves a running instance by a pre-copy and a delta: later writes, removals and type changes arrive", { skip: lxcSkip }, async () => {
    containers.push([join(dirs[0].path, "lxc"), "pc1"], [join(dirs[1].path, "lxc"), "pc1"]);
    await ca.createInstance({ name: "pc1", imageFingerprint: img.fingerprint });
    await ca.startInstance("pc1");
    const sh = async (client: MemberClient, script: string) => {
      const r = await client.run("pc1", ["sh", "-c", script]);
      assert.equal(r.exitCode, 0, r.stderr.toString());
      return r.stdout.toString();
    };
    await sh(ca, "cd /root && echo one > a.txt && echo bye > gone.txt && mkdir -p dir/sub && echo x > dir/sub/x && ln -s a.txt was-link");

    // Pass 1 while it runs: staged on the target, no instance there yet.
    await ca.copyInstanceTo(cb, "pc1", undefined, { precopyId: "p1" });
    assert.deepEqual(await cb.listInstances(), []);
    const containersB = join(dirs[1].path, "pools/default/containers");
    assert.equal(readdirSync(containersB).filter((n) => n.includes("pc1.precopy-p1")).length, 1);

    // Same-size rewrite, removal, directory -> file, symlink -> directory, new file, chmod.
    await sh(ca, "cd /root && echo two > a.txt && rm gone.txt && rm -r dir && echo now-a-file > dir && rm was-link && mkdir was-link && echo new > new.txt && chmod 600 new.txt");
    // The delta needs a stopped instance, and a pre-copy the source knows.
    await assert.rejects(ca.copyInstanceTo(cb, "pc1", undefined, { sincePrecopyId: "p1" }), (err) => code(err) === grpc.status.FAILED_PRECONDITION);
    await ca.stopInstance("pc1", { timeoutMs: 10_000 });
    await assert.rejects(ca.copyInstanceTo(cb, "pc1", undefined, { sincePrecopyId: "nope" }), (err) => code(err) === grpc.status.FAILED_PRECONDITION);

    const moved = await ca.copyInstanceTo(cb, "pc1", undefined, { sincePrecopyId: "p1" });
    assert.equal(moved.location, "m2");
    assert.deepEqual(readdirSync(containersB).filter((n) => n.startsWith(".")), [], "no staging left behind");
    // The two copies are identical, entry by entry (type, size, mode, owners, file bytes, link targets).
    assert.deepEqual(treeOf(join(containersB, "pc1")), treeOf(join(dirs[0].path, "pools/default/containers/pc1")));
    await ca.deleteInstance("pc1");
    await cb.startInstance("pc1");
    assert.equal(await sh(cb, "cd /root && cat a.txt dir new.txt && ls -ld was-link | cut -c1 && test ! -e gone.txt && stat -c %a new.txt"), "two\nnow-a-file\nnew\nd\n600\n");
    await cb.deleteInstance("pc1", true);
  });

  it("refuses a delta pass for a pre-copy the target never staged, leaving nothing behind", async () => {
    if (!lxcSkip) containers.push([join(dirs[0].path, "lxc"), "pc2"]);
    await ca.createInstance({ name: "pc2", imageFingerprint: img.fingerprint });
    await ca.copyInstanceTo(cb, "pc2", undefined, { precopyId: "p2" });
    const containersB = join(dirs[1].path, "pools/default/containers");
    for (const n of readdirSync(containersB)) if (n.includes("pc2.precopy-")) rmSync(join(containersB, n), { recursive: true });
    await assert.rejects(ca.copyInstanceTo(cb, "pc2", undefined, { sincePrecopyId: "p2" }), (err) => code(err) === grpc.status.FAILED_PRECONDITION);
    assert.deepEqual(readdirSync(containersB).filter((n) => n.includes("pc2")), []);
    // A full copy still works.
    await ca.copyInstanceTo(cb, "pc2");
    await cb.deleteInstance("pc2");
    await ca.deleteInstance("pc2");
  });

  it("relocates an instance on a shared pool without copying", async () => {
    if (!lxcSkip) containers.push([join(dirs[0].path, "lxc"), "sh1"], [join(dirs[1].path, "lxc"), "sh1"]);
    await ca.createInstance({ name: "sh1", imageFingerprint: img.fingerprint, pool: "shared" });
    const inode = statSync(join(dirs[2].path, "containers/sh1/instance.json")).ino;
    assert.deepEqual((await cb.listInstances()).map((i) => i.name), []);
    await assert.rejects(cb.adoptInstance("sh1", "default"), (err) => code(err) === grpc.status.FAILED_PRECONDITION);
    const adopted = await cb.adoptInstance("sh1", "shared");
    assert.equal(adopted.location, "m2");
    assert.equal(adopted.pool, "shared");
    assert.equal(statSync(join(dirs[2].path, "containers/sh1/instance.json")).ino, inode, "same files, not a copy");
    assert.deepEqual((await cb.listInstances({ brief: true })).map((i) => [i.name, i.statusText]), [["sh1", "Stopped"]]);
    assert.deepEqual((await ca.listInstances({ brief: true })).map((i) => i.name), [], "a brief listing checks the owner too");
    // The old member no longer answers for it.
    await assert.rejects(ca.startInstance("sh1"), (err) => code(err) === grpc.status.NOT_FOUND);
    assert.deepEqual((await ca.listInstances()).map((i) => i.name), []);
    await cb.startInstance("sh1");
    assert.equal((await cb.run("sh1", ["echo", "relocated"])).stdout.toString(), "relocated\n");
    await cb.deleteInstance("sh1", true);
    assert.ok(!existsSync(join(dirs[2].path, "containers/sh1")));
  });

  it("learns a cluster pool with EnsurePool and remembers it across a restart", async () => {
    const source = join(dirs[2].path, "pool2");
    assert.deepEqual(await cb.ensurePool({ name: "pool2", driver: "shared", source }), { name: "pool2", driver: "shared", source });
    assert.deepEqual(await cb.ensurePool({ name: "pool2", driver: "shared", source }), { name: "pool2", driver: "shared", source }, "idempotent");
    const local = await cb.ensurePool({ name: "local2", driver: "dir", source: "" });
    assert.equal(local.source, join(dirs[1].path, "pools/local2"), "a dir pool without source lives under the agent");
    await cb.createInstance({ name: "p2a", imageFingerprint: img.fingerprint, pool: "pool2" });
    await assert.rejects(cb.ensurePool({ name: "pool2", driver: "shared", source: join(dirs[2].path, "elsewhere") }), (err) => code(err) === grpc.status.FAILED_PRECONDITION && /has instances on it/.test((err as grpc.ServiceError).details));
    await assert.rejects(cb.ensurePool({ name: "bad", driver: "zfs", source: "" }), (err) => code(err) === grpc.status.INVALID_ARGUMENT);
    await assert.rejects(cb.ensurePool({ name: "bad", driver: "shared", source: "" }), (err) => code(err) === grpc.status.INVALID_ARGUMENT);
    await assert.rejects(cb.ensurePool({ name: "bad", driver: "dir", source: "relative/path" }), (err) => code(err) === grpc.status.INVALID_ARGUMENT);
    // A restarted agent re-opens the pools it learned and finds its instance there.
    cb.close();
    const address = b.address;
    await b.close();
    b = await runMemberAgent({ dir: dirs[1].path, name: "m2", listen: address, tls, driver: lxcSkip ? "simulated" : "lxc", pools: [{ name: "default", driver: "dir", source: join(dirs[1].path, "pools/default") }, { name: "shared", driver: "shared", source: dirs[2].path }] });
    cb = new MemberClient(b.address, tls);
    assert.deepEqual((await cb.listInstances()).map((i) => [i.name, i.pool]), [["p2a", "pool2"]]);
    await cb.deleteInstance("p2a", true);
  });

  it("answers clear errors for unknown instances and images", async () => {
    await assert.rejects(ca.startInstance("nope"), (err) => code(err) === grpc.status.NOT_FOUND && /Instance "nope" not found/.test((err as grpc.ServiceError).details));
    await assert.rejects(ca.createInstance({ name: "x1", imageFingerprint: "a".repeat(64) }), (err) => code(err) === grpc.status.NOT_FOUND);
    await assert.rejects(ca.createInstance({ name: "x1", imageFingerprint: img.fingerprint, pool: "nope" }), (err) => code(err) === grpc.status.NOT_FOUND);
    await assert.rejects(ca.createInstance({ name: "-x", imageFingerprint: img.fingerprint }), (err) => code(err) === grpc.status.INVALID_ARGUMENT);
    const bad = ca.exec({ name: "nope", command: ["true"] });
    await assert.rejects(bad.result, (err) => code(err) === grpc.status.NOT_FOUND);
  });
});

/** Every entry under `dir`: type, size, mode, owners, and a file's bytes or a link's target. */
function treeOf(dir: string, rel = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, path));
    const what = st.isSymbolicLink() ? `-> ${readlinkSync(join(dir, path))}` : st.isFile() ? readFileSync(join(dir, path)).toString("base64").slice(0, 64) + `#${st.size}` : "";
    out[path] = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${what}`;
    if (st.isDirectory()) Object.assign(out, treeOf(dir, path));
  }
  return out;
}
