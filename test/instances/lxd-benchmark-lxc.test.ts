// Debian's lxd-benchmark (lxd-tools 5.0.2) against the gateway's unix socket, with
// real processes (`shoal member` ×3 with the lxc driver, `shoal gateway`) and real
// containers. The tool speaks the older /1.0/containers API (CreateContainer,
// UpdateContainerState, GetContainers, DeleteContainer), finds the image by alias,
// and prints the server from GET /1.0. It reports a failed container on stdout and
// still exits 0, so every run here is checked for "Failed" lines as well as its exit
// code, and the cluster's state is checked with the real lxc after each step.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LXC, type RunResult } from "../api/support.ts";
import { containerSuite } from "./support.ts";
import { lxcSkipReason } from "../../services/member/test/support/env.ts";

const LXD_BENCHMARK = "/usr/bin/lxd-benchmark";
const skip = !existsSync(LXD_BENCHMARK)
  ? `${LXD_BENCHMARK} missing (apt-get install lxd-tools)`
  : !existsSync(LXC)
    ? `${LXC} missing`
    : await lxcSkipReason();

describe("lxd-benchmark launch|stop|start|delete (real processes, real containers)", { skip: skip ?? false }, () => {
  const MEMBERS = ["member1", "member2", "member3"];
  const s = containerSuite(MEMBERS, { importImage: true });
  const { c, created, ok, list } = s;
  const NAMES = Array.from({ length: 6 }, (_, i) => `benchmark-${i + 1}`);
  for (const n of NAMES) created.add(n); // removed by the suite if a step fails half-way

  const report = () => join(c.dir, "lxd-benchmark.csv");
  const benchmark = (...args: string[]): Promise<RunResult> =>
    new Promise((resolve) => {
      const env = { PATH: process.env.PATH, HOME: c.env.LXD_CONF, LANG: "C", LXD_DIR: c.env.LXD_DIR };
      execFile(LXD_BENCHMARK, args, { env, timeout: 180_000, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === "number" ? Number((err as NodeJS.ErrnoException).code) : null) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  /** A run that must succeed for every container: exit 0 and no "Failed to …" line. */
  const succeeds = async (...args: string[]) => {
    const r = await benchmark(...args, "--report-file", report());
    assert.equal(r.code, 0, `lxd-benchmark ${args.join(" ")}: ${r.stderr}\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /Failed/, `lxd-benchmark ${args.join(" ")}:\n${r.stdout}`);
    assert.match(r.stdout, /Batch processing completed/);
    return r.stdout;
  };
  const ours = async () => (await list()).filter((i) => NAMES.includes(i.name));

  test("launch --count 6 --parallel 3 bb: six containers, Running, spread over the members", async () => {
    const out = await succeeds("launch", "--count", "6", "--parallel", "3", "bb");
    assert.match(out, /Server backend: shoal/);
    assert.match(out, /Container backend: lxc/);
    assert.match(out, new RegExp(`Found image in local store: ${s.image.fingerprint}`));
    const all = await ours();
    assert.deepEqual(all.map((i) => i.name).sort(), NAMES);
    assert.ok(all.every((i) => i.status === "Running" && i.state && i.state.pid > 0), JSON.stringify(all.map((i) => [i.name, i.status])));
    assert.ok(all.every((i) => i.config["user.lxd-benchmark"] === "true"));
    // Parallel creations take turns at placement, so they spread as serial ones do.
    const per = new Map(MEMBERS.map((m) => [m, all.filter((i) => i.location === m).length]));
    assert.ok([...per.values()].every((n) => n >= 1), JSON.stringify([...per]));
    assert.ok(Math.max(...per.values()) - Math.min(...per.values()) <= 1, JSON.stringify([...per]));
    // What a containers client lists: its own URLs (as LXD's /1.0/containers alias).
    const urls = JSON.parse(await ok("query", "/1.0/containers")) as string[];
    assert.deepEqual(urls.filter((u) => u.startsWith("/1.0/containers/benchmark-")).sort(), NAMES.map((n) => `/1.0/containers/${n}`));
  });

  test("stop, then start: every benchmark container changes state", async () => {
    await succeeds("stop", "--parallel", "3");
    assert.ok((await ours()).every((i) => i.status === "Stopped"), JSON.stringify((await ours()).map((i) => [i.name, i.status])));
    await succeeds("start", "--parallel", "3");
    assert.ok((await ours()).every((i) => i.status === "Running"), JSON.stringify((await ours()).map((i) => [i.name, i.status])));
  });

  test("delete removes them (running ones are stopped first); the CSV report has a row per run", async () => {
    await succeeds("delete");
    assert.deepEqual(await ours(), []);
    const rows = readFileSync(report(), "utf8").trim().split("\n");
    assert.equal(rows[0], "timeStamp,elapsed,label,responseCode,success");
    assert.deepEqual(rows.slice(1).map((r) => r.split(",")[2]), ["launch", "stop", "start", "delete"]);
    assert.ok(rows.slice(1).every((r) => r.endsWith(",true")), rows.join("\n"));
  });

  test("an unknown image: the tool fails (exit 1, Image not found) and nothing is created", async () => {
    const r = await benchmark("launch", "--count", "2", "nosuch");
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /Image not found/);
    assert.deepEqual(await ours(), []);
  });
});
