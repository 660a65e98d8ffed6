// What the bench asks of the cluster: sequential writes, many concurrent
// writers, reads, a bulk load. Every loop is bounded in count and in time.

import { ClusterDatabaseClient } from "../src/node/database-client.ts";
import type { TlsConfig } from "../src/transport/credentials.ts";
import type { BenchCluster } from "./cluster.ts";
import { now, sleep, summarize, type Summary } from "./percentiles.ts";

export const TABLE = "bench_rows";
export const SCHEMA = `CREATE TABLE ${TABLE} (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, v TEXT NOT NULL)`;
const INSERT = `INSERT INTO ${TABLE} (writer, v) VALUES (?, ?)`;

/** A row of about 100 bytes (the value alone is 96). */
export function rowValue(writer: number, i: number): string {
  return `w${writer}-${i}-`.padEnd(96, "abcdefghijklmnopqrstuvwxyz");
}

export function insertOne(client: ClusterDatabaseClient, writer: number, i: number) {
  return client.exec([{ sql: INSERT, params: [writer, rowValue(writer, i)] }]);
}

/** Finds the node that says it leads; polls every address until one does. */
export async function findLeader(
  cluster: BenchCluster,
  client: ClusterDatabaseClient,
  opts: { exclude?: string; timeoutMs?: number } = {},
): Promise<{ id: string; address: string; term: number }> {
  const end = now() + (opts.timeoutMs ?? 15_000);
  while (now() < end) {
    for (const n of cluster.nodes) {
      if (!n.child || n.id === opts.exclude) continue;
      try {
        const s = await client.status(n.address);
        if (s.leader && s.leader === s.nodeId) return { id: n.id, address: n.address, term: s.term };
      } catch {
        // down or starting
      }
    }
    await sleep(20);
  }
  throw new Error("no leader within the time limit");
}

/** Waits until node `id` has applied everything the leader had committed when asked. */
export async function waitCaughtUp(
  cluster: BenchCluster,
  client: ClusterDatabaseClient,
  id: string,
  timeoutMs = 30_000,
): Promise<number> {
  const t0 = now();
  const leader = await findLeader(cluster, client, { timeoutMs });
  const target = (await client.status(leader.address)).commitIndex;
  const address = cluster.node(id).address;
  while (now() - t0 < timeoutMs) {
    try {
      if ((await client.status(address)).appliedIndex >= target) return now() - t0;
    } catch {
      // still starting
    }
    await sleep(20);
  }
  throw new Error(`${id} did not catch up to ${target} within ${timeoutMs} ms`);
}

/** Sequential one-row INSERTs: `warmup` unmeasured, then `count` measured (within `budgetMs`). */
export async function commitLatency(client: ClusterDatabaseClient, writer: number, count: number, warmup: number, budgetMs: number): Promise<Summary> {
  let i = 0;
  const end = now() + budgetMs;
  for (; i < warmup && now() < end; i++) await insertOne(client, writer, i);
  const samples: number[] = [];
  for (let k = 0; k < count && now() < end; k++, i++) {
    const t = now();
    await insertOne(client, writer, i);
    samples.push(now() - t);
  }
  return summarize(samples);
}

export interface ThroughputResult {
  clients: number;
  writers: number;
  writesPerSec: number;
  committed: number;
  latency: Summary;
  errors: number;
  /** CPU used during the measured window, in % of one core, per process sampled. */
  cpu: Record<string, number>;
}

/** CPU seconds used so far by each process of interest. */
export type CpuSampler = () => Record<string, number>;

/**
 * `writers` concurrent sequential writers spread over `clients` ClusterDatabaseClient
 * instances. Counts writes acknowledged inside [warm-up end, warm-up end + measure];
 * latency is taken from writes both started and finished inside that window.
 */
export async function throughput(
  tls: TlsConfig,
  addresses: string[],
  opts: { clients: number; writers: number; warmupMs: number; measureMs: number; firstWriter: number; cpu: CpuSampler },
): Promise<ThroughputResult> {
  const clients = Array.from({ length: opts.clients }, () => new ClusterDatabaseClient(addresses, tls, 5_000));
  const start = now() + opts.warmupMs;
  const stop = start + opts.measureMs;
  const latencies: number[] = [];
  let committed = 0;
  let errors = 0;
  let cpuStart: Record<string, number> = {};
  let cpuStartAt = 0;
  const cpu: Record<string, number> = {};
  const t1 = setTimeout(() => {
    cpuStart = opts.cpu();
    cpuStartAt = now();
  }, opts.warmupMs);
  const t2 = setTimeout(() => {
    const end = opts.cpu();
    const seconds = (now() - cpuStartAt) / 1000;
    for (const k of Object.keys(end)) cpu[k] = (100 * (end[k] - cpuStart[k])) / seconds;
  }, opts.warmupMs + opts.measureMs);
  const writer = async (w: number) => {
    const client = clients[w % clients.length];
    for (let i = 0; now() < stop && i < 1_000_000; i++) {
      const t = now();
      try {
        await insertOne(client, opts.firstWriter + w, i);
      } catch {
        errors++;
        await sleep(10);
        continue;
      }
      const done = now();
      if (done >= start && done <= stop) committed++;
      if (t >= start && done <= stop) latencies.push(done - t);
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.writers }, (_, w) => writer(w)));
  } finally {
    clearTimeout(t1);
    clearTimeout(t2);
    for (const c of clients) c.close();
  }
  return {
    cpu,
    clients: opts.clients,
    writers: opts.writers,
    writesPerSec: committed / (opts.measureMs / 1000),
    committed,
    latency: summarize(latencies),
    errors,
  };
}

/** Sequential point reads by primary key, against whichever node `client` knows. */
export async function readLatency(client: ClusterDatabaseClient, maxId: number, stale: boolean, count: number, budgetMs: number): Promise<Summary> {
  const sql = `SELECT v FROM ${TABLE} WHERE id = ?`;
  const end = now() + budgetMs;
  for (let i = 0; i < 100 && now() < end; i++) await client.query(sql, [1 + (i % maxId)], { stale });
  const samples: number[] = [];
  for (let i = 0; i < count && now() < end; i++) {
    const id = 1 + Math.floor(Math.random() * maxId);
    const t = now();
    await client.query(sql, [id], { stale });
    samples.push(now() - t);
  }
  return summarize(samples);
}

/** Inserts `rows` rows, `batch` statements per exec, `concurrency` execs in flight. */
export async function bulkLoad(
  client: ClusterDatabaseClient,
  rows: number,
  opts: { batch: number; concurrency: number; budgetMs: number; firstWriter: number },
): Promise<{ rows: number; ms: number }> {
  const batches = Math.ceil(rows / opts.batch);
  const t0 = now();
  let next = 0;
  let loaded = 0;
  const loader = async (l: number) => {
    while (next < batches && now() - t0 < opts.budgetMs) {
      const b = next++;
      const n = Math.min(opts.batch, rows - b * opts.batch);
      const statements = Array.from({ length: n }, (_, k) => ({
        sql: INSERT,
        params: [opts.firstWriter + l, rowValue(opts.firstWriter + l, b * opts.batch + k)],
      }));
      await client.exec(statements);
      loaded += n;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, (_, l) => loader(l)));
  return { rows: loaded, ms: now() - t0 };
}
