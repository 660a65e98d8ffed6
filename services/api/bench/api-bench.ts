// npm run bench:api — the gateway under load, on a 3-member cluster of built
// processes (dist/): requests per second and p50/p99 latency with keep-alive and a
// client certificate, at 1 and 32 concurrent clients, for GET /1.0,
// GET /1.0/cluster/members?recursion=1 and a write (PATCH /1.0 of a config key);
// then `lxc cluster list` as a whole process over the unix socket and over HTTPS.
// Each case runs for a bounded time and request count. LXD 5.0.2's figures on this
// machine (issue 3) are printed beside.
import { execFile } from "node:child_process";
import { Agent, request } from "node:https";
import { join } from "node:path";
import { generateCertificate } from "../../raft/src/transport/certificate.ts";
import { lxc } from "../../../test/api/support.ts";
import { TestCluster } from "../../../test/cluster/support.ts";

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

function timeProcess(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile(file, args, { env, timeout: 30_000 }, (err) => (err ? reject(err) : resolve(performance.now() - t0)));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const c = new TestCluster({ built: true });
  try {
    await c.bootstrap("member1");
    for (const name of ["member2", "member3"]) await c.join(name, await c.token(name));
    const address = JSON.parse((await c.lxc("query", "/1.0")).stdout).environment.addresses[0] as string;

    // A client certificate, trusted by password over HTTPS.
    const client = await generateCertificate({ commonName: "bench", hosts: ["127.0.0.1"] });
    if ((await c.lxc("config", "set", "core.trust_password", "bench-pass")).code !== 0) throw new Error("cannot set the trust password");
    const agent = new Agent({ keepAlive: true, maxSockets: 64, cert: client.cert, key: client.key, rejectUnauthorized: false });
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

    // `lxc cluster list` as a whole process, 10 runs each.
    const remote = { LXD_CONF: join(c.dir, "bench-remote") };
    const token = (await c.lxc("config", "trust", "add", "--name", "bench-lxc")).stdout.trim().split("\n").pop()!;
    if ((await lxc(["remote", "add", "shoal", token], remote)).code !== 0) throw new Error("lxc remote add failed");
    const unixEnv = { PATH: process.env.PATH, HOME: c.env.LXD_CONF, ...c.env };
    const httpsEnv = { PATH: process.env.PATH, HOME: remote.LXD_CONF, ...remote };
    const unixRuns: number[] = [];
    const httpsRuns: number[] = [];
    for (let i = 0; i < 10; i++) {
      unixRuns.push(await timeProcess("/usr/bin/lxc", ["cluster", "list"], unixEnv));
      httpsRuns.push(await timeProcess("/usr/bin/lxc", ["cluster", "list", "shoal:"], httpsEnv));
    }
    rows.push(["lxc cluster list (unix socket), median of 10", "1", "", median(unixRuns).toFixed(1), "", "0", "17.8 ms"]);
    rows.push(["lxc cluster list (HTTPS), median of 10", "1", "", median(httpsRuns).toFixed(1), "", "0", "38.1 ms"]);

    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) console.log(r.map((x, i) => x.padEnd(w[i])).join("  "));
    agent.destroy();
  } finally {
    await c.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
