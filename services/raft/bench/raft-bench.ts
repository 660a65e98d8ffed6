// Raft-replicated SQLite benchmark: `npm run bench:raft`.
//
// Three node processes on loopback (gRPC, mTLS, fsync on), measured next to the
// floor under them (fdatasync of the same directory, loopback round trips). Prints
// a table of figures and targets; it asserts nothing and exits 0 unless the bench
// itself broke. Every loop is bounded in count and time; the temp dir and the
// node processes it started are removed even on error or Ctrl-C.
//
// Environment (all optional):
//   RAFT_BENCH_PHASES=latency,throughput   run only these of: latency, throughput, reads, rss, failover
//   RAFT_BENCH_NODE_MAIN=path.mjs          run another build of src/node/main.ts (.js/.mjs: without tsx),
//                                          e.g. an esbuild bundle, to compare with the tsx dev loader
//   RAFT_BENCH_NODE_FLAGS="--max-semi-space-size=2"   extra flags for node in each node process
//   RAFT_BENCH_FAILOVER_ROUNDS=10          more kill/restart rounds (default 3, at most 20)
//   RAFT_BENCH_CPU_PROF=/some/dir          start nodes with --cpu-prof (profiles land there on clean stop;
//                                          SIGKILLed nodes write none, so leave out "failover")

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ClusterDatabaseClient } from "../src/node/database-client.ts";
import { BenchCluster, DEFAULT_MAIN, type MemoryReport } from "./cluster.ts";
import { failoverRound, type FailoverRound } from "./failover.ts";
import { fsyncLatency, grpcRoundTrip, tcpRoundTrip } from "./floor.ts";
import { backgroundLoad, machineCpu, machineLines, memoryBreakdown } from "./machine.ts";
import { mb, ms, now, p50p99, perSec, sleep, table, type Row, type Summary } from "./percentiles.ts";
import { bulkLoad, commitLatency, findLeader, readLatency, SCHEMA, TABLE, throughput, type ThroughputResult } from "./workloads.ts";

const TICK_MS = 50; // DatabaseNode's default; elections after 10-20 ticks
const SNAPSHOT_EVERY = 8192; // DatabaseNode's default
const ALL_PHASES = ["latency", "throughput", "reads", "rss", "failover"];
const phases = new Set((process.env.RAFT_BENCH_PHASES ?? ALL_PHASES.join(",")).split(",").map((p) => p.trim()));
const nodeMain = process.env.RAFT_BENCH_NODE_MAIN ? resolve(process.env.RAFT_BENCH_NODE_MAIN) : DEFAULT_MAIN;
const failoverRounds = Math.min(20, Math.max(1, Number(process.env.RAFT_BENCH_FAILOVER_ROUNDS ?? 3) || 3));
const profDir = process.env.RAFT_BENCH_CPU_PROF ? resolve(process.env.RAFT_BENCH_CPU_PROF) : undefined;

const T0 = now();

function progress(msg: string): void {
  process.stderr.write(`[${((now() - T0) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);
}

const rows: Row[] = [];
const notes: string[] = [];
let broken = false;

/** Runs one phase; a failure is reported in the table and the bench goes on. */
async function phase(name: string, body: () => Promise<void>, label = name): Promise<void> {
  if (name !== "setup" && !phases.has(name)) return;
  progress(`${label}…`);
  try {
    await body();
  } catch (e) {
    broken = true;
    rows.push({ metric: `${name}: FAILED`, measured: (e as Error).message.split("\n")[0].slice(0, 120) });
    progress(`${name} failed: ${(e as Error).stack ?? e}`);
  }
}

const dir = mkdtempSync(join(tmpdir(), "shoal-bench-"));
let cluster: BenchCluster | undefined;
const onSignal = (sig: NodeJS.Signals) => {
  cluster?.killAllSync();
  rmSync(dir, { recursive: true, force: true });
  process.stderr.write(`\n${sig}: stopped; node processes killed, ${dir} removed\n`);
  process.exit(130);
};
process.once("SIGINT", onSignal);
process.once("SIGTERM", onSignal);
process.on("exit", () => cluster?.killAllSync());

// Both passed explicitly: main.ts hands DatabaseNode `undefined` for an omitted flag, which
// overrides the node's defaults (no --tick-ms: 1 ms ticks; no --snapshot-every: a snapshot
// after every Ready). See the bench report.
const nodeArgs = ["--tick-ms", String(TICK_MS), "--snapshot-every", String(SNAPSHOT_EVERY)];
// mem-probe.mjs answers SIGUSR2 with a memory breakdown; --expose-gc lets it add an after-GC figure.
const probe = pathToFileURL(resolve(import.meta.dirname, "mem-probe.mjs")).href;
// Default: the production flags of deploy/systemd (a small young generation).
const extraFlags = (process.env.RAFT_BENCH_NODE_FLAGS ?? "--max-semi-space-size=2").split(/\s+/).filter(Boolean);
const nodeFlags = ["--expose-gc", "--import", probe, ...extraFlags, ...(profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [])];

console.log("Shoal raft bench");
for (const line of machineLines(dir, await backgroundLoad())) console.log(line);
console.log(`  nodes   : 3 processes, loopback gRPC + mTLS, WAL fdatasync per Ready; ${nodeArgs.join(" ")}`);
console.log(`            (election after 10-20 ticks = ${10 * TICK_MS}-${20 * TICK_MS} ms; heartbeat every tick)`);
console.log(`  node main: ${nodeMain}; node flags: ${extraFlags.join(" ") || "(none)"}; MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? "2"}`);
if (extraFlags.length) console.log(`  node flags: ${extraFlags.join(" ")}`);
if (profDir) console.log(`  cpu-prof: ${profDir}`);
console.log("");

const closers: (() => void)[] = [];
let fsyncAppend: Summary | undefined;
let grpcRtt: Summary | undefined;

try {
  // ---- 1. the floor (before the nodes start, so nothing else touches the disk) ----
  await phase("setup", async () => {
    fsyncAppend = fsyncLatency(dir, "append");
    rows.push({ metric: "floor: append 256 B + fdatasync (1000x)", measured: p50p99(fsyncAppend) });
    const over = fsyncLatency(dir, "overwrite");
    rows.push({ metric: "floor: overwrite in preallocated file + fdatasync", measured: p50p99(over) });
    const tcp = await tcpRoundTrip();
    rows.push({ metric: "floor: loopback TCP round trip (2000x)", measured: p50p99(tcp) });
  }, "floor: fsync, loopback");

  progress("starting 3 node processes");
  if (profDir) mkdirSync(profDir, { recursive: true });
  cluster = await BenchCluster.start(dir, ["n1", "n2", "n3"], nodeArgs, nodeFlags, (c) => (cluster = c), nodeMain);
  const c = cluster;
  const admin = new ClusterDatabaseClient(c.addresses(), c.tls, 10_000);
  closers.push(() => admin.close());
  const leader = await findLeader(c, admin);
  const followers = c.nodes.filter((n) => n.id !== leader.id);
  const leaderFirst = [leader.address, ...followers.map((n) => n.address)];
  const client = new ClusterDatabaseClient(leaderFirst, c.tls, 10_000);
  closers.push(() => client.close());
  const baseline = Object.fromEntries(c.nodes.map((n) => [n.id, c.memory(n.id).rss]));
  const startReports = new Map<string, MemoryReport | undefined>();
  for (const n of c.nodes) startReports.set(n.id, await c.memoryReport(n.id));
  progress(`leader is ${leader.id}`);
  notes.push(`initial leader ${leader.id}; RSS at start: ${c.nodes.map((n) => `${n.id} ${mb(baseline[n.id])}`).join(", ")}`);

  await phase("setup", async () => {
    grpcRtt = await grpcRoundTrip(admin, leader.address);
    rows.push({ metric: "floor: gRPC unary round trip (Status, 2000x)", measured: p50p99(grpcRtt) });
    await client.exec([{ sql: SCHEMA }]);
  }, "gRPC round trip, schema");

  // ---- 2. single-client commit latency ----
  await phase("latency", async () => {
    const s = await commitLatency(client, 0, 2000, 200, 60_000);
    rows.push({ metric: `single client commit (${s.n} seq. INSERTs, leader)`, measured: `${p50p99(s)} / mean ${ms(s.mean)}` });
    if (fsyncAppend && grpcRtt) {
      const floor = fsyncAppend.p50 + 2 * grpcRtt.p50;
      const ratio = s.p50 / floor;
      rows.push({
        metric: "  p50 / (fsync p50 + 2 x gRPC p50)",
        measured: `${ratio.toFixed(2)}x (floor ${ms(floor)})`,
        target: `<= 8x, p50 <= ${ms(8 * floor)}`,
        met: ratio <= 8,
      });
    }
    // A client whose first address is a follower is forwarded (and stays there: it only moves on errors).
    const viaFollower = new ClusterDatabaseClient([followers[0].address, leader.address], c.tls, 10_000);
    try {
      const f = await commitLatency(viaFollower, 1, 500, 50, 30_000);
      rows.push({ metric: `single client commit via follower ${followers[0].id} (forwarded)`, measured: p50p99(f) });
    } finally {
      viaFollower.close();
    }
  });

  // ---- 3. throughput, 64 concurrent writers ----
  await phase("throughput", async () => {
    const cpu = () => {
      const out: Record<string, number> = {};
      for (const n of c.nodes) out[n.id + (n.id === leader.id ? " (leader)" : "")] = c.cpuSeconds(n.id);
      const self = process.cpuUsage();
      out.bench = (self.user + self.system) / 1e6;
      return { ...out, ...machineCpu() };
    };
    // Each layout twice, interleaved, so neither always runs on the bigger database.
    const runs: ThroughputResult[] = [];
    for (const clients of [1, 4, 1, 4]) {
      const firstWriter = 100 + runs.length * 100;
      const r = await throughput(c.tls, leaderFirst, { clients, writers: 64, warmupMs: 1_000, measureMs: 5_000, firstWriter, cpu });
      runs.push(r);
      const ours = Object.entries(r.cpu).filter(([k]) => !k.startsWith("machine")).reduce((a, [, v]) => a + v, 0);
      const cpuText = [...Object.entries(r.cpu), ["others", (r.cpu["machine busy"] ?? Number.NaN) - ours] as const]
        .map(([k, v]) => `${k} ${v.toFixed(0)}%`)
        .join(", ");
      notes.push(`throughput run ${runs.length} (${clients} client${clients > 1 ? "s" : ""}), CPU in % of one core (${availableParallelism()} cores): ${cpuText}`);
      progress(`  ${clients} client(s): ${perSec(r.writesPerSec)}`);
    }
    for (const clients of [1, 4]) {
      const mine = runs.filter((r) => r.clients === clients);
      const best = mine.reduce((a, b) => (b.writesPerSec > a.writesPerSec ? b : a));
      rows.push({
        metric: `64 writers on ${clients} client${clients > 1 ? "s" : ""} (5 s, best of ${mine.length})`,
        measured:
          `${perSec(best.writesPerSec)}, ${p50p99(best.latency)}` +
          ` (runs: ${mine.map((r) => perSec(r.writesPerSec)).join(", ")})` +
          (best.errors ? `, ${best.errors} errors` : ""),
      });
    }
    const best = runs.reduce((a, b) => (b.writesPerSec > a.writesPerSec ? b : a));
    rows.push({
      metric: `throughput, best (${best.clients} client${best.clients > 1 ? "s" : ""})`,
      measured: perSec(best.writesPerSec),
      target: ">= 5,000/s",
      met: best.writesPerSec >= 5_000,
    });
  });

  // ---- 4. reads ----
  await phase("reads", async () => {
    const max = Number((await client.query(`SELECT max(id) FROM ${TABLE}`, [], { stale: true })).rows[0]?.[0] ?? 0);
    if (max < 1) throw new Error("no rows to read");
    const onLeader = new ClusterDatabaseClient([leader.address], c.tls, 10_000);
    const onFollower = new ClusterDatabaseClient([followers[0].address], c.tls, 10_000);
    try {
      const lin = await readLatency(onLeader, max, false, 1000, 20_000);
      rows.push({ metric: `linearizable read on leader ${leader.id}`, measured: p50p99(lin) });
      const linF = await readLatency(onFollower, max, false, 1000, 20_000);
      rows.push({ metric: `linearizable read on follower ${followers[0].id}`, measured: p50p99(linF) });
      const staleL = await readLatency(onLeader, max, true, 1000, 20_000);
      rows.push({ metric: "stale read on leader", measured: p50p99(staleL) });
      const staleF = await readLatency(onFollower, max, true, 1000, 20_000);
      rows.push({ metric: "stale read on follower", measured: p50p99(staleF) });
    } finally {
      onLeader.close();
      onFollower.close();
    }
  });

  // ---- 6. memory after 100,000 rows (before failover, which restarts nodes) ----
  await phase("rss", async () => {
    const load = await bulkLoad(client, 100_000, { batch: 500, concurrency: 4, budgetMs: 90_000, firstWriter: 1_000 });
    rows.push({ metric: "bulk load 100,000 rows (500/exec, 4 in flight)", measured: `${load.rows} rows in ${ms(load.ms)} (${perSec((load.rows * 1000) / load.ms)})` });
    await sleep(1_000);
    const total = (await client.query(`SELECT count(*) FROM ${TABLE}`)).rows[0]?.[0];
    notes.push(`RSS measured with ${String(total)} rows in ${TABLE} (~100 B each) after every phase before it`);
    for (const n of c.nodes) {
      const m = c.memory(n.id);
      rows.push({
        metric: `RSS ${n.id}${n.id === leader.id ? " (leader)" : ""} (start ${mb(baseline[n.id])}, peak ${mb(m.peak)})`,
        measured: mb(m.rss),
        target: "< 150 MB",
        met: m.rss > 0 && m.rss < 150e6,
      });
    }
    // Where it goes: V8 heap, Buffers (external), the rest is native.
    const fmt = memoryBreakdown;
    for (const n of c.nodes) {
      const start = startReports.get(n.id);
      const r = await c.memoryReport(n.id);
      if (!r) continue;
      notes.push(`memory ${n.id}${n.id === leader.id ? " (leader)" : ""}:`);
      if (start) notes.push(`  at start     ${fmt(start.before)}`);
      notes.push(`  after load   ${fmt(r.before)}`);
      if (r.afterGc) notes.push(`  after gc()   ${fmt(r.afterGc)}`);
    }
  });

  // ---- 5. failover ----
  await phase("failover", async () => {
    const rounds: FailoverRound[] = [];
    for (let r = 0; r < failoverRounds; r++) {
      const f = await failoverRound(c, 5_000 + 10 * r, { gapLimitMs: 10_000 });
      rounds.push(f);
      progress(`  round ${r + 1}: killed ${f.victim}, ${f.newLeader} leads; write gap ${ms(f.gapMs)}`);
      rows.push({
        metric: `failover ${r + 1}: SIGKILL ${f.victim} -> a new write acked`,
        measured: `${ms(f.gapMs)} (${f.newLeader} elected at ${ms(f.electedMs)})`,
      });
      notes.push(
        `failover ${r + 1}: ${f.writesBefore} writes before the kill, ${f.errors} client errors; ` +
          `${f.victim} restarted in ${ms(f.restartMs)}, caught up ${ms(f.catchUpMs)} later`,
      );
    }
    const worst = Math.max(...rounds.map((f) => f.gapMs));
    rows.push({ metric: `failover, max of ${rounds.length}`, measured: ms(worst), target: "<= 2000 ms", met: worst <= 2_000 });
  });
} catch (e) {
  broken = true;
  rows.push({ metric: "bench: FAILED", measured: (e as Error).message.split("\n")[0].slice(0, 120) });
  progress(`bench failed: ${(e as Error).stack ?? e}`);
} finally {
  for (const close of closers) close();
  progress("stopping nodes");
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
}

console.log(table(rows));
if (notes.length) console.log(`\n${notes.map((n) => `  ${n}`).join("\n")}`);
console.log(`\ntotal ${((now() - T0) / 1000).toFixed(1)} s`);
process.exit(broken ? 1 : 0);
