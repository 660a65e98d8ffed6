// The simulated driver: no processes, deterministic, and honest about itself.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Member } from "../src/agent/member.ts";
import { SimulatedDriver } from "../src/drivers/simulated/simulated-driver.ts";
import { selectDriver } from "../src/drivers/select.ts";
import type { ExecOptions } from "../src/drivers/driver.ts";
import { buildBusyboxImage, busyboxMissing, type BusyboxImage } from "./support/busybox-image.ts";
import { tempDir } from "./support/env.ts";

const missing = busyboxMissing();

async function run(m: Member, name: string, command: string[], stdin?: string) {
  const opts: ExecOptions = { command, env: {}, cwd: "", interactive: false, uid: 0, gid: 0 };
  const p = await m.exec(name, opts);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  p.stdout.on("data", (b: Buffer) => out.push(b));
  p.stderr.on("data", (b: Buffer) => err.push(b));
  if (stdin) p.writeStdin(Buffer.from(stdin));
  p.closeStdin();
  return { code: await p.exited, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

describe("simulated driver", { skip: missing && `no test image: ${missing}` }, () => {
  const dir = tempDir("sim");
  let img: BusyboxImage;
  let m: Member;

  before(async () => {
    img = buildBusyboxImage();
    m = new Member({ name: "s1", dir: dir.path, driver: await selectDriver("simulated", dir.path) });
    await m.init();
    await m.images.importFile(img.path);
  });
  after(() => {
    img?.cleanup();
    dir.cleanup();
  });

  it("creates instances without a rootfs or processes, and says it is simulated", async () => {
    for (let i = 0; i < 50; i++) await m.create({ name: `s${i}`, imageFingerprint: img.fingerprint, createdAt: 1_700_000_000_000 + i });
    assert.ok(!existsSync(join(dir.path, "pools/default/containers/s0/rootfs")));
    for (let i = 0; i < 50; i += 2) await m.start(`s${i}`);
    const hb = await m.heartbeat();
    assert.equal(hb.driver, "simulated");
    assert.equal(hb.instanceCount, 50);
    assert.equal(hb.runningCount, 25);
    const list = await m.list();
    assert.equal(list.length, 50);
    assert.equal(list.find((v) => v.record.name === "s2")?.status, "Running");
    assert.equal(list.find((v) => v.record.name === "s3")?.status, "Stopped");
    const brief = await m.statuses();
    assert.deepEqual(brief.map((v) => v.name), list.map((v) => v.record.name));
    assert.deepEqual(brief.find((v) => v.name === "s2"), { name: "s2", status: "Running", statusCode: 103 });
    const withState = await m.list({ withState: true });
    assert.deepEqual(withState.find((v) => v.record.name === "s2")?.state?.pid, -1);
    assert.deepEqual(withState.find((v) => v.record.name === "s3")?.state?.status, "Stopped");
    const st = await m.state("s0");
    assert.deepEqual([st.status, st.pid, st.processes], ["Running", -1, 1]);
  });

  it("answers exec deterministically", async () => {
    assert.deepEqual(await run(m, "s0", ["echo", "hi", "there"]), { code: 0, stdout: "hi there\n", stderr: "" });
    assert.equal((await run(m, "s0", ["sh", "-c", "exit 7"])).code, 7);
    assert.equal((await run(m, "s0", ["cat"], "piped\n")).stdout, "piped\n");
    assert.deepEqual(await run(m, "s0", ["ls"]), { code: 127, stdout: "", stderr: "simulated: ls: not found\n" });
    await assert.rejects(run(m, "s1", ["true"]), /not running/);
  });

  it("stops cleanly at once and deletes", async () => {
    const r = await m.stop("s0", 1000);
    assert.equal(r.clean, true);
    assert.equal(r.view.status, "Stopped");
    await assert.rejects(m.delete("s2"), /currently running/);
    await m.delete("s2", true);
    await m.delete("s0");
    assert.equal((await m.list()).length, 48);
    assert.ok(!existsSync(join(dir.path, "pools/default/containers/s0")));
  });

  it("takes a fixed start/stop delay when asked", async () => {
    const d = new SimulatedDriver({ delayMs: 30 });
    const rec = { name: "x", type: "container" as const, architecture: "x86_64", imageFingerprint: "", imageProperties: {}, config: {}, devices: {}, createdAt: 0, idmap: null };
    const t0 = performance.now();
    await d.start(rec, { dir: "", rootfs: "" });
    assert.ok(performance.now() - t0 >= 25);
    assert.equal((await d.state(rec)).status, "Running");
  });
});
