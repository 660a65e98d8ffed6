// npm run bench:evacuation — `lxc cluster evacuate|restore --force` of a member holding
// N running busybox containers, Shoal beside a real LXD 5.0.2 cluster started on
// loopback in the same run (services/api/bench/lxd/lxd-cluster.ts), both driven by the
// real `lxc` 5.0.2 client over their unix sockets. The figure is the wall time of the
// `lxc` command, which waits for the operation.
//
// Shoal: 3 real `shoal member` processes (built, dist/) with the lxc driver and a
// gateway; N = 4 (3 rounds: median, min–max) and 16 (1 round), and 4 with every
// instance's cluster.evacuate=stop (stopped in place, started again on restore). Then
// 3 members with `--driver simulated` (no processes): 4, 16 and 256 instances, to show
// how the time grows with the count. LXD: the same real cases on its cluster.
// Every case checks the result (after evacuate: none left on the member (stop mode:
// all there, stopped), all running elsewhere, member EVACUATED; after restore: all on
// the member, running, member ONLINE) and fails loudly otherwise.
//
//   --only shoal|lxd   one side only
//   --quick            N = 4 only (1 round) and 256 simulated
//
// Issue: LXD 5.0.2 took 12.7–14.1 s (median 13.1 s) to evacuate a member with 4 running
// busybox containers, 13.7 s to restore it, 10.8 s in stop mode; target ≥ 5× faster
// for 4, growing well below linearly in the number of instances.
import { parseArgs } from "node:util";
import { Cleanups, deleteAll, runPart, lxcList, lxcOk, lxcRun, mapLimit, median, printTable, secs, spread, waitFor, withLxdCluster, withShoalCluster, type LxcTarget } from "./bench-support.ts";

const { values: flags } = parseArgs({ options: { only: { type: "string" }, quick: { type: "boolean", default: false } } });
if (flags.only && flags.only !== "shoal" && flags.only !== "lxd") throw new Error("--only wants shoal or lxd");
const QUICK = flags.quick;
const REAL: { n: number; rounds: number; stop?: boolean }[] = QUICK
  ? [{ n: 4, rounds: 1 }]
  : [{ n: 4, rounds: 3 }, { n: 16, rounds: 1 }, { n: 4, rounds: 1, stop: true }];
const SIMULATED = QUICK ? [256] : [4, 16, 256];
const EVACUATE_TIMEOUT_MS = 600_000;

interface Measured {
  evacuate: number[];
  restore: number[];
}
type Outcome = Measured | { error: string };
const caseLabel = (n: number, stop?: boolean, simulated?: boolean) =>
  `${n} running${stop ? ", cluster.evacuate=stop" : ""}${simulated ? " (simulated driver)" : ""}`;

const log = (line: string) => process.stderr.write(`# ${line}\n`);

/** Members' status as `lxc cluster list` shows it. */
async function memberStatus(t: LxcTarget, member: string): Promise<string> {
  const list: { server_name: string; status: string }[] = JSON.parse(await lxcOk(t, ["cluster", "list", "--format", "json"]));
  return list.find((m) => m.server_name === member)?.status ?? "absent";
}

async function check(t: LxcTarget, names: string[], member: string, expect: "evacuated" | "evacuated-stopped" | "restored"): Promise<void> {
  const all = new Map((await lxcList(t)).map((i) => [i.name, i]));
  const wrong: string[] = [];
  for (const n of names) {
    const i = all.get(n);
    if (!i) {
      wrong.push(`${n} missing`);
      continue;
    }
    const onMember = i.location === member;
    const ok = expect === "evacuated" ? !onMember && i.status === "Running" : expect === "evacuated-stopped" ? onMember && i.status === "Stopped" : onMember && i.status === "Running";
    if (!ok) wrong.push(`${n} ${i.status} on ${i.location}`);
  }
  if (wrong.length) throw new Error(`${t.label}: after ${expect === "restored" ? "restore" : "evacuate"}: ${wrong.slice(0, 8).join(", ")}${wrong.length > 8 ? ` (+${wrong.length - 8})` : ""}`);
  const status = await memberStatus(t, member);
  const want = expect === "restored" ? "Online" : "Evacuated";
  if (status !== want) throw new Error(`${t.label}: ${member} is ${status}, not ${want}`);
}

/** Launches n containers on `member`, evacuates and restores it `rounds` times (timed, checked), deletes them. */
async function evacuationCase(t: LxcTarget, member: string, prefix: string, n: number, rounds: number, stop = false): Promise<Measured> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
  try {
    const t0 = performance.now();
    await mapLimit(names, n > 16 ? 16 : 4, (name) => lxcOk(t, ["launch", "bb", name, "--target", member], 300_000));
    await waitFor(`${n} instances running on ${member}`, 120_000, async () => {
      const all = await lxcList(t);
      return names.every((x) => all.some((i) => i.name === x && i.status === "Running" && i.location === member));
    });
    log(`${t.label}: ${n} running on ${member} after ${secs(performance.now() - t0)}`);
    if (stop) await mapLimit(names, 4, (name) => lxcOk(t, ["config", "set", name, "cluster.evacuate=stop"]));
    const m: Measured = { evacuate: [], restore: [] };
    for (let r = 0; r < rounds; r++) {
      const ev = await lxcRun(t, ["cluster", "evacuate", member, "--force"], EVACUATE_TIMEOUT_MS);
      if (ev.code !== 0) throw new Error(`${t.label}: lxc cluster evacuate ${member} failed after ${secs(ev.ms)}: ${ev.stderr.trim().slice(-500)}`);
      await check(t, names, member, stop ? "evacuated-stopped" : "evacuated");
      const re = await lxcRun(t, ["cluster", "restore", member, "--force"], EVACUATE_TIMEOUT_MS);
      if (re.code !== 0) throw new Error(`${t.label}: lxc cluster restore ${member} failed after ${secs(re.ms)}: ${re.stderr.trim().slice(-500)}`);
      await check(t, names, member, "restored");
      m.evacuate.push(ev.ms);
      m.restore.push(re.ms);
      log(`${t.label}: ${caseLabel(n, stop)} round ${r + 1}: evacuate ${secs(ev.ms)}, restore ${secs(re.ms)}`);
    }
    return m;
  } finally {
    // A failed case may leave the member evacuated: restore it (no-op error otherwise).
    await lxcRun(t, ["cluster", "restore", member, "--force"], EVACUATE_TIMEOUT_MS);
    await deleteAll(t, names);
  }
}

async function runCases(t: LxcTarget, member: string, cases: { n: number; rounds: number; stop?: boolean }[], simulated: boolean, into: Map<string, Outcome>): Promise<void> {
  for (const c of cases) {
    const label = caseLabel(c.n, c.stop, simulated);
    try {
      into.set(label, await evacuationCase(t, member, `ev${c.stop ? "s" : ""}${c.n}-`, c.n, c.rounds, c.stop));
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      log(`FAILED ${t.label} ${label}: ${error}`);
      into.set(label, { error });
    }
  }
}

const realNames = () => REAL.flatMap((x) => Array.from({ length: x.n }, (_, i) => `ev${x.stop ? "s" : ""}${x.n}-${i + 1}`));

const part = (into: Map<string, Outcome>, name: string, fn: () => Promise<unknown>) => runPart(name, fn, (error) => into.set(name, { error }), log);

async function main(): Promise<void> {
  const cleanups = new Cleanups();
  const shoal = new Map<string, Outcome>();
  const lxdResults = new Map<string, Outcome>();
  let lxdLine = "LXD: not run (--only shoal)";
  try {
    if (flags.only !== "lxd") {
      await part(shoal, "Shoal (real)", () => withShoalCluster(cleanups, { leftovers: realNames, log }, (t) => runCases(t, "member2", REAL, false, shoal)));
      await part(shoal, "Shoal (simulated)", () =>
        withShoalCluster(cleanups, { simulated: true, log }, (t) => runCases(t, "member2", SIMULATED.map((n) => ({ n, rounds: 1 })), true, shoal)),
      );
    }
    if (flags.only !== "shoal") {
      await part(lxdResults, "LXD", async () => {
        lxdLine = await withLxdCluster(cleanups, log, (t, l) => runCases(t, l.names[1], REAL, false, lxdResults));
      });
    }
  } finally {
    await cleanups.run();
  }

  const fig = (o: Outcome | undefined, k: keyof Measured) => (!o ? "—" : "error" in o ? "FAILED" : spread(o[k]));
  const ratio = (s: Outcome | undefined, l: Outcome | undefined, k: keyof Measured) =>
    !s || !l || "error" in s || "error" in l ? "—" : `${(median(l[k]) / median(s[k])).toFixed(1)}×`;
  const labels = [...new Set([...REAL.map((x) => caseLabel(x.n, x.stop)), ...SIMULATED.map((n) => caseLabel(n, false, true))])];
  console.log("");
  console.log("lxc cluster evacuate|restore <member> --force, wall time (median (min–max) over rounds)");
  printTable([
    ["case", "Shoal evacuate", "Shoal restore", "LXD evacuate", "LXD restore", "LXD/Shoal (evac, restore)"],
    ...labels.map((label) => {
      const s = shoal.get(label);
      const l = lxdResults.get(label);
      return [label, fig(s, "evacuate"), fig(s, "restore"), fig(l, "evacuate"), fig(l, "restore"), `${ratio(s, l, "evacuate")}, ${ratio(s, l, "restore")}`];
    }),
  ]);
  console.log("");
  console.log(lxdLine);
  console.log("Reference (issue, LXD 5.0.2 on this machine): evacuate 4 running busybox containers 12.7–14.1 s (median 13.1 s), restore 13.7 s, stop mode 10.8 s; target ≥ 5× faster for 4.");
  const failures = [...shoal, ...lxdResults].filter(([, o]) => "error" in o) as [string, { error: string }][];
  for (const [label, o] of failures) console.log(`FAILED ${label}: ${o.error}`);
  if ([...shoal].some(([, o]) => "error" in o)) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
