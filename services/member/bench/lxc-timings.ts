// Prints how long the lxc driver takes for each step of a container's life on this
// host (not asserted anywhere): image import, create (unpack + id shift), start,
// first exec, clean stop (halt signal) and delete, for N busybox containers one
// after another, then N started in parallel.
//   node --import tsx services/member/bench/lxc-timings.ts [N]
import { join } from "node:path";
import { Member } from "../src/agent/member.ts";
import { LxcDriver } from "../src/drivers/lxc/lxc-driver.ts";
import { buildBusyboxImage } from "../test/support/busybox-image.ts";
import { killContainer, lxcSkipReason, tempDir } from "../test/support/env.ts";

const n = Number(process.argv[2] ?? 5);
const skip = await lxcSkipReason();
if (skip) {
  console.log(`cannot measure: ${skip}`);
  process.exit(0);
}
const dir = tempDir("bench");
const img = buildBusyboxImage();
const lxcpath = join(dir.path, "lxc");
const m = new Member({ name: "bench", dir: dir.path, driver: new LxcDriver(lxcpath) });
const names: string[] = [];
const ms = (t0: number) => performance.now() - t0;
const times: Record<string, number[]> = {};
const note = (k: string, v: number) => (times[k] ??= []).push(v);
try {
  await m.init();
  let t = performance.now();
  await m.images.importFile(img.path, { expectedFingerprint: img.fingerprint });
  console.log(`image ${img.size} bytes, import ${ms(t).toFixed(0)} ms`);
  for (let i = 0; i < n; i++) {
    const name = `b${i}`;
    names.push(name);
    t = performance.now();
    await m.create({ name, imageFingerprint: img.fingerprint });
    note("create", ms(t));
    t = performance.now();
    await m.start(name);
    note("start", ms(t));
    t = performance.now();
    const p = await m.exec(name, { command: ["true"], env: {}, cwd: "", interactive: false, uid: 0, gid: 0 });
    p.closeStdin();
    await p.exited;
    note("exec true", ms(t));
    t = performance.now();
    const s = await m.stop(name, 10_000);
    note(s.clean ? "stop (clean)" : "stop (killed)", ms(t));
    t = performance.now();
    await m.start(name);
    note("restart start", ms(t));
    t = performance.now();
    await m.stop(name, 0, true);
    note("stop --force", ms(t));
  }
  t = performance.now();
  await Promise.all(names.map((x) => m.start(x)));
  console.log(`${n} started in parallel: ${ms(t).toFixed(0)} ms`);
  t = performance.now();
  await Promise.all(names.map((x) => m.stop(x, 10_000)));
  console.log(`${n} clean stops in parallel: ${ms(t).toFixed(0)} ms`);
  t = performance.now();
  for (const x of names) await m.delete(x);
  console.log(`${n} deletes: ${(ms(t) / n).toFixed(0)} ms each`);
  for (const [k, v] of Object.entries(times)) {
    const sorted = [...v].sort((a, b) => a - b);
    console.log(`${k.padEnd(14)} median ${sorted[Math.floor(sorted.length / 2)].toFixed(0).padStart(5)} ms  min ${sorted[0].toFixed(0).padStart(5)}  max ${sorted[sorted.length - 1].toFixed(0).padStart(5)}  (n=${v.length})`);
  }
} finally {
  for (const x of names) killContainer(lxcpath, x);
  img.cleanup();
  dir.cleanup();
}
