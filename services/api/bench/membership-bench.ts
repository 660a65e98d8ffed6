// npm run bench:membership — how fast membership changes land, with real processes
// (the built `shoal`, dist/) and the real `lxc` over the gateway's unix socket:
//   1. join: from `shoal member --join TOKEN` starting to the member listed ONLINE
//      (includes starting a Node process and loading its modules); and the same for a
//      member started inside this process (modules loaded: what LXD's figure is, a
//      running daemon told to join by `lxd init --preseed`);
//   2. leader death: SIGKILL of the database leader's member until a replicated
//      write (`lxc config set`) succeeds again, 3 times;
//   3. voter death: SIGKILL of a non-leader voter until it shows OFFLINE and a
//      stand-by has replaced it, with cluster.offline_threshold 10 s and 20 s (default).
// Reference, real LXD 5.0.2 on this machine (issue 4): join 0.35–1.0 s; cluster
// answers again 5.6 s after the leader's SIGKILL; a killed member OFFLINE after 9.1 s
// (median) with the default 20 s threshold.
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { freePort } from "../../raft/test/support/node-processes.ts";
import { startMember } from "../src/cluster/member-daemon.ts";
import { TestCluster, waitUntil } from "../../../test/cluster/support.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (n: number) => `${Math.round(n)} ms`;

async function main(): Promise<void> {
  const start = performance.now();
  spawnSync(process.execPath, [resolve(ROOT, "dist/services/api/src/shoal.js"), "--help"]);
  const processStart = performance.now() - start;

  const c = new TestCluster({ built: true });
  try {
    await c.bootstrap("member1");
    const joins: number[] = [];
    for (const name of ["member2", "member3", "member4", "member5"]) {
      const token = await c.token(name);
      const t0 = performance.now();
      await c.join(name, token);
      await waitUntil(`${name} ONLINE`, 30_000, async () => (await c.members()).some((m) => m.server_name === name && m.status === "Online"), 20);
      joins.push(performance.now() - t0);
    }
    // A running daemon told to join: member6 in this process, then removed again.
    const inProcess: number[] = [];
    for (let i = 0; i < 3; i++) {
      const name = `inproc${i}`;
      const token = await c.token(name);
      const listen = `127.0.0.1:${await freePort()}`;
      const t0 = performance.now();
      const m = await startMember({ dir: c.memberDir(name), join: token, listen, log: () => undefined, handover: false });
      await waitUntil(`${name} ONLINE`, 30_000, async () => (await c.members()).some((x) => x.server_name === name && x.status === "Online"), 5);
      inProcess.push(performance.now() - t0);
      const rm = await c.lxc("cluster", "remove", name);
      if (rm.code !== 0) throw new Error(`lxc cluster remove ${name}: ${rm.stderr}`);
      await m.removed;
    }

    await waitUntil("3 voters, 2 stand-bys", 30_000, async () => {
      const m = await c.members();
      return m.filter((x) => x.roles.includes("database")).length === 3 && m.filter((x) => x.roles.includes("database-standby")).length === 2;
    });

    const failovers: number[] = [];
    for (let i = 0; i < 3; i++) {
      const leader = (await c.members()).find((m) => m.roles.includes("database-leader"))!.server_name;
      c.kill(leader);
      const t0 = performance.now();
      await waitUntil("a write after the leader's death", 60_000, async () => (await c.lxc("config", "set", "cluster.join_token_expiry", `${3 + i}H`)).code === 0, 20);
      failovers.push(performance.now() - t0);
      await c.resume(leader);
      await waitUntil("3 online voters again", 60_000, async () => (await c.members()).filter((m) => m.roles.includes("database") && m.status === "Online").length === 3);
    }

    const offline: Record<string, number> = {};
    for (const threshold of ["10", "20"]) {
      if ((await c.lxc("config", "set", "cluster.offline_threshold", threshold)).code !== 0) throw new Error("cannot set the offline threshold");
      const victim = (await c.members()).find((m) => m.roles.includes("database") && !m.roles.includes("database-leader"))!.server_name;
      c.kill(victim);
      const t0 = performance.now();
      await waitUntil(`${victim} OFFLINE and replaced`, 90_000, async () => {
        const m = await c.members();
        return m.find((x) => x.server_name === victim)?.status === "Offline" && m.filter((x) => x.roles.includes("database") && x.status === "Online").length === 3;
      }, 50);
      offline[threshold] = performance.now() - t0;
      await c.resume(victim);
      await waitUntil(`${victim} back`, 60_000, async () => (await c.members()).find((x) => x.server_name === victim)?.status === "Online");
    }

    const rows = [
      ["", "Shoal", "LXD 5.0.2 (issue 4)", "target"],
      ["join of a running member (token to ONLINE), median of 3", ms(median(inProcess)), "350–1000 ms", "≤ 300 ms"],
      ["join with a new process (start to ONLINE), median of 4", ms(median(joins)), "", ""],
      ["  (a bare `shoal --help` process, for scale)", ms(processStart), "", ""],
      ["leader SIGKILL to a write, median of 3", ms(median(failovers)), "5600 ms", "≤ 2000 ms"],
      ["voter SIGKILL to OFFLINE + replaced, threshold 10 s", ms(offline["10"]), "", ""],
      ["voter SIGKILL to OFFLINE + replaced, threshold 20 s", ms(offline["20"]), "9100 ms (OFFLINE only)", ""],
    ];
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) console.log(r.map((x, i) => x.padEnd(w[i])).join("  "));
    console.log(`joins in process: ${inProcess.map(ms).join(", ")}; with a process: ${joins.map(ms).join(", ")}; failovers: ${failovers.map(ms).join(", ")}`);
  } finally {
    await c.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
