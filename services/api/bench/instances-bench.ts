// npm run bench:instances — launching and listing instances, Shoal beside a real LXD
// 5.0.2 cluster started on loopback in the same run (services/api/bench/lxd/lxd-cluster.ts),
// with the same busybox image (alias bb) and the same clients:
//   1. `lxd-benchmark launch --count 40 --parallel 8 bb` over each system's unix socket
//      (wall time of the process, its own figure beside) and how the 40 instances spread
//      over the members; the same for 10 launches in parallel and 10 one after another;
//      each batch removed with `lxd-benchmark delete` (timed) and `lxc delete --force`;
//   2. `lxc list` (recursion=2) with 12 instances: median of 10 runs;
//   3. Shoal with simulated members (`shoal member --driver simulated`, no processes):
//      instances created through the API (POST /1.0/instances over the unix socket,
//      32 at once, bounded in time) up to 1,000 and 10,000, and
//      `GET /1.0/instances?recursion=1` latency at each (median of several runs).
// Where lxd-benchmark fails against a system its row says FAILED and why; the listing
// still runs (its 12 instances come from `lxc launch`).
//
//   --only shoal|lxd   one side only
//   --quick            skips the 10-instance launches and stops the simulated part at 1,000
//
// Issue: real LXD 5.0.2 here launched 10 busybox containers in 2.1 s in parallel and
// 3.0 s one after another, but piled 9–10 of 10 parallel launches onto one member; its
// `lxc list` (recursion=2) took 247 ms with 12 instances. Aim: Shoal at least as fast as
// LXD at launching, parallel launches spread evenly, `lxc list` of 12 under 50 ms and a
// 10,000-instance recursion=1 listing under 1 s.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Cleanups, deleteAll, runPart, localRequest, lxcList, lxcOk, lxcRun, mapLimit, median, msText, printTable, secs, spread, waitFor, withLxdCluster, withShoalCluster, SHOAL_MEMBERS, type LxcTarget } from "./bench-support.ts";
import { LXD_BENCHMARK, runCommand } from "./lxd/lxd-cluster.ts";

const { values: flags } = parseArgs({ options: { only: { type: "string" }, quick: { type: "boolean", default: false } } });
if (flags.only && flags.only !== "shoal" && flags.only !== "lxd") throw new Error("--only wants shoal or lxd");
const QUICK = flags.quick;
const LAUNCHES: { key: string; label: string; count: number; parallel: number }[] = [
  { key: "l40", label: "launch 40, lxd-benchmark --parallel 8", count: 40, parallel: 8 },
  ...(QUICK
    ? []
    : [
        { key: "l10p", label: "launch 10, lxd-benchmark --parallel 10", count: 10, parallel: 10 },
        { key: "l10s", label: "launch 10 one after another (--parallel 1)", count: 10, parallel: 1 },
      ]),
];
const LIST_INSTANCES = 12;
const LIST_RUNS = 10;
const SIM_COUNTS = QUICK ? [1_000] : [1_000, 10_000];
const SIM_CREATE_PARALLEL = 32;
const SIM_CREATE_BUDGET_MS = 20 * 60_000;

const log = (line: string) => process.stderr.write(`# ${line}\n`);

/** Per system and row: a figure, or why there is none. */
type Cell = { text: string; ms?: number } | { error: string };
type Results = Map<string, Cell>;

function lastLines(text: string, n = 2): string {
  return text.trim().split("\n").slice(-n).join(" / ").slice(0, 300);
}

/** "member1 14, member2 13, member3 13" of the instances called benchmark-*. */
async function spreadOf(t: LxcTarget, members: string[], prefix: string): Promise<{ text: string; count: number; running: number; names: string[]; notRunning: string[] }> {
  const mine = (await lxcList(t)).filter((i) => i.name.startsWith(prefix));
  const by = new Map(members.map((m) => [m, 0]));
  for (const i of mine) by.set(i.location, (by.get(i.location) ?? 0) + 1);
  const notRunning = mine.filter((i) => i.status !== "Running").map((i) => `${i.name} ${i.status} on ${i.location}`);
  return { text: [...by].map(([m, n]) => `${m} ${n}`).join(", "), count: mine.length, running: mine.length - notRunning.length, names: mine.map((i) => i.name), notRunning };
}

/** lxd-benchmark's lines that report a failure, else its last lines. */
function benchmarkComplaint(r: { stdout: string; stderr: string }): string {
  const text = `${r.stdout}\n${r.stderr}`;
  const bad = text.split("\n").filter((l) => /fail|error|denied|not found/i.test(l));
  return (bad.length ? bad.slice(0, 3).join(" / ") : lastLines(text)).slice(0, 400);
}

/** lxd-benchmark launch (timed), the spread, lxd-benchmark delete (timed), then anything left deleted. */
async function launchCases(t: LxcTarget, members: string[], into: Results): Promise<void> {
  const env = { PATH: process.env.PATH, HOME: t.env.LXD_CONF, LANG: "C", ...t.env };
  for (const c of LAUNCHES) {
    try {
      const r = await runCommand(LXD_BENCHMARK, ["launch", "--count", String(c.count), "--parallel", String(c.parallel), "bb"], { env, timeoutMs: 600_000 });
      const own = /Batch processing completed in ([\d.]+)s/.exec(r.stdout + r.stderr)?.[1];
      const s = await spreadOf(t, members, "benchmark-");
      if (r.code !== 0 || s.running !== c.count) {
        into.set(c.key, { error: `lxd-benchmark exited ${r.code} after ${secs(r.ms)}, ${s.running}/${c.count} running${s.notRunning.length ? ` (${s.notRunning.slice(0, 4).join(", ")})` : ""}: ${benchmarkComplaint(r)}` });
      } else {
        into.set(c.key, { text: `${secs(r.ms)}${own ? ` (own: ${own} s)` : ""}`, ms: r.ms });
      }
      into.set(`${c.key}.spread`, { text: s.count ? s.text : "—" });
      log(`${t.label}: ${c.label}: exit ${r.code} in ${secs(r.ms)}; ${s.running}/${c.count} running; ${s.text}`);
      const d = await runCommand(LXD_BENCHMARK, ["delete", "--parallel", "8"], { env, timeoutMs: 600_000 });
      const left = await spreadOf(t, members, "benchmark-");
      into.set(`${c.key}.delete`, d.code === 0 && left.count === 0 ? { text: secs(d.ms), ms: d.ms } : { error: `lxd-benchmark delete exited ${d.code}, ${left.count} left: ${lastLines(d.stderr || d.stdout)}` });
      if (left.count) await deleteAll(t, left.names);
    } catch (e) {
      into.set(c.key, { error: e instanceof Error ? e.message : String(e) });
    }
  }
}

/** 12 instances from `lxc launch`, then `lxc list` LIST_RUNS times (after one warm-up). */
async function listCase(t: LxcTarget, into: Results): Promise<void> {
  const names = Array.from({ length: LIST_INSTANCES }, (_, i) => `ls${i + 1}`);
  try {
    await mapLimit(names, 4, (n) => lxcOk(t, ["launch", "bb", n], 300_000));
    await waitFor(`${LIST_INSTANCES} running`, 120_000, async () => (await lxcList(t)).filter((i) => names.includes(i.name) && i.status === "Running").length === names.length);
    const total = (await lxcList(t)).length;
    await lxcOk(t, ["list"]);
    const times: number[] = [];
    for (let i = 0; i < LIST_RUNS; i++) {
      const r = await lxcRun(t, ["list"], 60_000);
      if (r.code !== 0) throw new Error(`lxc list failed: ${r.stderr.trim()}`);
      times.push(r.ms);
    }
    const direct: number[] = [];
    for (let i = 0; i < LIST_RUNS; i++) {
      const r = await localRequest(join(t.env.LXD_DIR, "unix.socket"), "GET", "/1.0/instances?recursion=2");
      if (r.status !== 200) throw new Error(`GET /1.0/instances?recursion=2: ${r.status}`);
      direct.push(r.ms);
    }
    into.set("list12", { text: spread(times, msText), ms: median(times) });
    into.set("list12.api", { text: spread(direct, msText), ms: median(direct) });
    log(`${t.label}: lxc list with ${total} instances: ${spread(times, msText)}; the request alone ${spread(direct, msText)}`);
  } catch (e) {
    into.set("list12", { error: e instanceof Error ? e.message : String(e) });
  } finally {
    await deleteAll(t, names);
  }
}

/** Names a run may leave running on Shoal's members (killed at the end): lxd-benchmark's benchmark-N / benchmark-0N and ours. */
const realNames = () => [
  ...Array.from({ length: 40 }, (_, i) => [`benchmark-${i + 1}`, `benchmark-${String(i + 1).padStart(2, "0")}`]).flat(),
  ...Array.from({ length: LIST_INSTANCES }, (_, i) => `ls${i + 1}`),
];

/**
 * Creates instances sim-(from+1)..sim-total through the API, SIM_CREATE_PARALLEL at once,
 * each tried up to 3 times (a failure is counted and reported, not hidden), until the
 * deadline. Returns how many exist and the failures.
 */
async function createSimulated(socket: string, from: number, total: number, deadline: number): Promise<{ have: number; failures: number; firstError: string }> {
  let have = from;
  let failures = 0;
  let firstError = "";
  const createOne = async (name: string): Promise<string | undefined> => {
    const r = await localRequest(socket, "POST", "/1.0/instances", { name, source: { type: "image", alias: "bb" } });
    const op = r.json?.operation;
    if (r.status !== 202 || !op) return `POST /1.0/instances (${name}): ${r.status} ${r.json?.error ?? ""}`;
    const w = await localRequest(socket, "GET", `${op}/wait?timeout=120`, undefined, 130_000);
    if (w.json?.metadata?.status === "Success") return undefined;
    // A failed create leaves nothing behind (the gateway removes its reservation), so the name can be tried again.
    return `creating ${name}: ${w.json?.metadata?.err ?? w.json?.error ?? w.status}`;
  };
  const indexes = Array.from({ length: total - from }, (_, i) => from + i + 1);
  await mapLimit(indexes, SIM_CREATE_PARALLEL, async (i) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (Date.now() > deadline || failures > 100) return;
      const err = await createOne(`sim-${i}`);
      if (!err) {
        have++;
        return;
      }
      failures++;
      firstError ||= err;
    }
  });
  if (failures) log(`simulated: ${failures} failed creations (retried), first: ${firstError}`);
  if (failures > 100) throw new Error(`creating simulated instances: ${failures} failures, first: ${firstError}`);
  return { have, failures, firstError };
}

async function simulatedListing(t: LxcTarget, into: Results): Promise<void> {
  const socket = join(t.env.LXD_DIR, "unix.socket");
  const deadline = Date.now() + SIM_CREATE_BUDGET_MS;
  let have = 0;
  for (const target of SIM_COUNTS) {
    const t0 = performance.now();
    const before = have;
    let failures = 0;
    try {
      ({ have, failures } = await createSimulated(socket, have, target, deadline));
    } catch (e) {
      into.set(`sim${target}`, { error: e instanceof Error ? e.message : String(e) });
      break;
    }
    const rate = ((have - before) / ((performance.now() - t0) / 1000)).toFixed(0);
    into.set(`sim${target}.create`, { text: `${before ? `${have - before} more` : have} in ${secs(performance.now() - t0)} (${rate}/s, ${SIM_CREATE_PARALLEL} at once${failures ? `; ${failures} failed and retried` : ""})` });
    log(`Shoal (simulated): ${have} instances created: ${(into.get(`sim${target}.create`) as { text: string }).text}`);
    const runs: number[] = [];
    let bytes = 0;
    const n = target >= 10_000 ? 5 : LIST_RUNS;
    try {
      for (let i = -1; i < n; i++) {
        const r = await localRequest(socket, "GET", "/1.0/instances?recursion=1", undefined, 120_000);
        if (r.status !== 200 || !Array.isArray(r.json?.metadata)) throw new Error(`GET /1.0/instances?recursion=1 with ${have} instances: ${r.status} ${r.json?.error ?? ""} (after ${msText(r.ms)})`);
        if (r.json!.metadata.length !== have) throw new Error(`GET /1.0/instances?recursion=1 listed ${r.json!.metadata.length}, expected ${have}`);
        bytes = r.bytes;
        if (i >= 0) runs.push(r.ms); // the first is a warm-up
      }
    } catch (e) {
      into.set(`sim${target}`, { error: e instanceof Error ? e.message : String(e) });
      log(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    const s = await spreadOf(t, SHOAL_MEMBERS, "sim-").catch(() => undefined);
    into.set(`sim${target}`, { text: `${spread(runs, msText)}${have < target ? ` (only ${have} of ${target} created)` : ""}`, ms: median(runs) });
    into.set(`sim${target}.spread`, { text: s ? s.text : "—" });
    log(`Shoal (simulated): ${have} instances: GET /1.0/instances?recursion=1 ${spread(runs, msText)} (${(bytes / 1e6).toFixed(1)} MB); ${s?.text ?? ""}`);
    if (have < target) break;
  }
}

const part = (into: Results, name: string, fn: () => Promise<unknown>) => runPart(name, fn, (error) => into.set(`part ${name}`, { error }), log);

async function main(): Promise<void> {
  const cleanups = new Cleanups();
  const shoal: Results = new Map();
  const lxdResults: Results = new Map();
  let lxdLine = "LXD: not run (--only shoal)";
  try {
    if (flags.only !== "lxd") {
      await part(shoal, "real", () =>
        withShoalCluster(cleanups, { leftovers: realNames, log }, async (t) => {
          await launchCases(t, SHOAL_MEMBERS, shoal);
          await listCase(t, shoal);
        }),
      );
      await part(shoal, "simulated", () => withShoalCluster(cleanups, { simulated: true, log }, (t) => simulatedListing(t, shoal)));
    }
    if (flags.only !== "shoal") {
      await part(lxdResults, "lxd", async () => {
        lxdLine = await withLxdCluster(cleanups, log, async (t, l) => {
          await launchCases(t, l.names, lxdResults);
          await listCase(t, lxdResults);
        });
      });
    }
  } finally {
    await cleanups.run();
  }

  const cell = (r: Results, k: string) => {
    const c = r.get(k);
    return !c ? "—" : "error" in c ? "FAILED" : c.text;
  };
  const ratio = (k: string) => {
    const s = shoal.get(k);
    const l = lxdResults.get(k);
    return s && l && "ms" in s && "ms" in l && s.ms && l.ms ? `${(l.ms / s.ms).toFixed(1)}×` : "";
  };
  const rows: string[][] = [["", "Shoal", "LXD", "LXD/Shoal"]];
  for (const c of LAUNCHES) {
    rows.push([c.label, cell(shoal, c.key), cell(lxdResults, c.key), ratio(c.key)]);
    rows.push(["  spread over members", cell(shoal, `${c.key}.spread`), cell(lxdResults, `${c.key}.spread`), ""]);
    rows.push(["  lxd-benchmark delete", cell(shoal, `${c.key}.delete`), cell(lxdResults, `${c.key}.delete`), ratio(`${c.key}.delete`)]);
  }
  rows.push([`lxc list, ${LIST_INSTANCES} instances (median of ${LIST_RUNS})`, cell(shoal, "list12"), cell(lxdResults, "list12"), ratio("list12")]);
  rows.push(["  the GET ?recursion=2 alone", cell(shoal, "list12.api"), cell(lxdResults, "list12.api"), ratio("list12.api")]);
  for (const n of SIM_COUNTS) {
    rows.push([`GET /1.0/instances?recursion=1, ${n.toLocaleString("en")} (simulated)`, cell(shoal, `sim${n}`), "", ""]);
    rows.push(["  created through the API", cell(shoal, `sim${n}.create`), "", ""]);
    rows.push(["  spread over members", cell(shoal, `sim${n}.spread`), "", ""]);
  }
  console.log("");
  printTable(rows);
  console.log("");
  console.log(lxdLine);
  console.log("Reference (issue, LXD 5.0.2 on this machine): 10 busybox launches in 2.1 s in parallel, 3.0 s one after another, 9–10 of 10 parallel launches on one member; lxc list (recursion=2) 247 ms with 12 instances.");
  console.log("Aim: launching at least as fast as LXD, parallel launches spread evenly, lxc list of 12 under 50 ms, a 10,000-instance recursion=1 listing under 1 s.");
  for (const [side, r] of [["Shoal", shoal], ["LXD", lxdResults]] as const) {
    for (const [k, c] of r) if ("error" in c) console.log(`FAILED (${side}, ${k}): ${c.error}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
