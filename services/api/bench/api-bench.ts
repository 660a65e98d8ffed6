// npm run bench:api — the gateway under load, on a 3-member cluster of built
// processes (dist/): requests per second and p50/p99 latency with keep-alive and a
// client certificate, at 1 and 32 concurrent clients, for GET /1.0,
// GET /1.0/cluster/members?recursion=1 and a write (PATCH /1.0 of a config key);
// then `lxc cluster list` as a whole process over the unix socket and over HTTPS
// (lxc-cluster-list.ts), side by side with a second Shoal cluster whose certificate
// is ECDSA P-384 (LXD's key; new clusters get P-256, cluster/certificate.ts) and with
// a real LXD 5.0.2 cluster started here (bench/lxd/lxd-cluster.ts; `--only shoal`
// skips it). Each case runs for a bounded time and request count. LXD 5.0.2's figures
// from issue 3 are printed beside.
import { mkdirSync } from "node:fs";
import { Agent, request } from "node:https";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { generateCertificate, saveCertificate } from "../../raft/src/transport/certificate.ts";
import { lxc } from "../../../test/api/support.ts";
import { TestCluster } from "../../../test/cluster/support.ts";
import { Cleanups, printTable } from "./bench-support.ts";
import { clusterListRows, measureClusterList, type ListTarget } from "./lxc-cluster-list.ts";
import { tryStartLxdCluster } from "./lxd/lxd-cluster.ts";

const { values: flags } = parseArgs({ options: { only: { type: "string" } } });
if (flags.only && flags.only !== "shoal") throw new Error("--only wants shoal (skips the LXD cluster)");
const CASE_MS = Number(process.env.API_BENCH_CASE_MS ?? 3_000);
const CASE_MAX_REQUESTS = 20_000;

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function call(agent: Agent, host: string, port: number, method: string, path: string, body?: string): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request({ host, port, method, path, agent, headers: body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200 ? performance.now() - started : -1));
    });
    req.on("error", () => resolve(-1));
    req.end(body);
  });
}

async function load(agent: Agent, address: string, concurrency: number, method: string, path: string, body?: (i: number) => string): Promise<Result> {
  const [host, port] = [address.replace(/:\d+$/, ""), Number(address.replace(/^.*:/, ""))];
  const latencies: number[] = [];
  let errors = 0;
  let issued = 0;
  const deadline = performance.now() + CASE_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline && issued < CASE_MAX_REQUESTS) {
        const i = issued++;
        const ms = await call(agent, host, port, method, path, body?.(i));
        if (ms < 0) errors++;
        else latencies.push(ms);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { rps: latencies.length / elapsed, p50: at(0.5), p99: at(0.99), errors };
}

/** A 3-member Shoal cluster of built processes; `cert` pre-placed as member1's cluster certificate. */
async function shoalCluster(cleanups: Cleanups, cert?: { cert: string; key: string }): Promise<TestCluster> {
  const c = new TestCluster({ built: true });
  cleanups.add(() => c.close());
  if (cert) {
    mkdirSync(c.memberDir("member1"), { recursive: true });
    await saveCertificate(cert, join(c.memberDir("member1"), "cluster.crt"), join(c.memberDir("member1"), "cluster.key"));
  }
  await c.bootstrap("member1");
  for (const name of ["member2", "member3"]) await c.join(name, await c.token(name));
  return c;
}

/** `lxc remote add NAME TOKEN` in a fresh client config dir, the token made over `local`'s unix socket. */
async function remoteByToken(local: { LXD_DIR: string; LXD_CONF: string }, confDir: string, name: string): Promise<Record<string, string>> {
  const made = await lxc(["config", "trust", "add", "--name", `bench-${name}`], local);
  const token = made.stdout.trim().split("\n").pop() ?? "";
  const added = await lxc(["remote", "add", name, token], { LXD_CONF: confDir });
  if (made.code !== 0 || added.code !== 0) throw new Error(`lxc remote add ${name}: ${made.stderr}${added.stderr}`);
  return { LXD_CONF: confDir, HOME: confDir };
}

async function requestTable(c: TestCluster): Promise<string[][]> {
  const address = JSON.parse((await c.lxc("query", "/1.0")).stdout).environment.addresses[0] as string;
  // A client certificate, trusted by password over HTTPS.
  const client = await generateCertificate({ commonName: "bench", hosts: ["127.0.0.1"] });
  if ((await c.lxc("config", "set", "core.trust_password", "bench-pass")).code !== 0) throw new Error("cannot set the trust password");
  const agent = new Agent({ keepAlive: true, maxSockets: 64, cert: client.cert, key: client.key, rejectUnauthorized: false });
  try {
    const trustStatus = await new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ type: "client", password: "bench-pass", name: "bench" });
      const req = request({ host: "127.0.0.1", port: Number(address.split(":")[1]), method: "POST", path: "/1.0/certificates", agent, headers: { "content-type": "application/json" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end(body);
    });
    if (trustStatus !== 201) throw new Error(`trust by password: HTTP ${trustStatus}`);

    const cases: [string, string, string, ((i: number) => string) | undefined][] = [
      ["GET /1.0", "GET", "/1.0", undefined],
      ["GET /1.0/cluster/members?recursion=1", "GET", "/1.0/cluster/members?recursion=1", undefined],
      ["PATCH /1.0 (a config key)", "PATCH", "/1.0", (i) => JSON.stringify({ config: { "cluster.join_token_expiry": `${(i % 9) + 1}H` } })],
    ];
    const reference: Record<string, string> = {
      "GET /1.0": "0.7 ms",
      "GET /1.0/cluster/members?recursion=1": "1.8 ms",
      "PATCH /1.0 (a config key)": "",
    };
    const rows: string[][] = [["request", "clients", "req/s", "p50 ms", "p99 ms", "errors", "LXD 5.0.2 p50"]];
    for (const [label, method, path, body] of cases) {
      await load(agent, address, 4, method, path, body); // warm-up
      for (const conc of [1, 32]) {
        const r = await load(agent, address, conc, method, path, body);
        rows.push([label, String(conc), r.rps.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), String(r.errors), conc === 1 ? reference[label] : "≤ ~74 req/s total"]);
      }
    }
    return rows;
  } finally {
    agent.destroy();
  }
}

async function main(): Promise<void> {
  const cleanups = new Cleanups();
  const log = (line: string) => console.error(`# ${line}`);
  try {
    const c = await shoalCluster(cleanups);
    printTable(await requestTable(c));
    console.log("");

    // The same cluster with LXD's certificate key, to show what the key costs.
    const p384 = await generateCertificate({ commonName: "shoal", hosts: ["127.0.0.1", "::1", "localhost", os.hostname()] });
    const c384 = await shoalCluster(cleanups, p384);
    const lxd = flags.only === "shoal" ? { reason: "--only shoal" } : await tryStartLxdCluster({ members: 3, image: false, log });
    if (lxd.cluster) cleanups.add(() => lxd.cluster.close());

    const targets: ListTarget[] = [
      { label: "Shoal, unix socket", args: ["cluster", "list"], env: { ...c.env, HOME: c.env.LXD_CONF }, reference: "17.8 ms" },
      { label: "Shoal, HTTPS (ECDSA P-256 certificate)", args: ["cluster", "list", "shoal:"], env: await remoteByToken(c.env, join(c.dir, "bench-remote"), "shoal"), reference: "38.1 ms" },
      { label: "Shoal, HTTPS (ECDSA P-384 certificate, as LXD)", args: ["cluster", "list", "shoal:"], env: await remoteByToken(c384.env, join(c384.dir, "bench-remote"), "shoal") },
    ];
    if (lxd.cluster) {
      const l = lxd.cluster;
      targets.push({ label: `LXD ${l.version}, unix socket`, args: ["cluster", "list"], env: { ...l.env }, reference: "17.8 ms" });
      targets.push({ label: `LXD ${l.version}, HTTPS`, args: ["cluster", "list", "lxd:"], env: await remoteByToken(l.env, join(l.dir, "bench-remote"), "lxd"), reference: "38.1 ms" });
    }
    printTable(clusterListRows(await measureClusterList(targets)));
    console.log(lxd.cluster ? `LXD: ${lxd.cluster.names.length} daemons of ${lxd.cluster.version} started for this run` : `LXD: not run (${lxd.reason})`);
  } finally {
    await cleanups.run();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
