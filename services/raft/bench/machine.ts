// What the bench runs on, and how busy it is: machine description, CPU accounting
// from /proc, and the memory breakdown a node reports (see mem-probe.mjs).

import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";
import type { MemorySample } from "./cluster.ts";
import { filesystemOf } from "./floor.ts";
import { mb, sleep } from "./percentiles.ts";

/** Machine-wide busy and steal CPU seconds so far, from /proc/stat (USER_HZ = 100). */
export function machineCpu(): Record<string, number> {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
    const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
    return { "machine busy": (user + nice + system + irq + softirq) / 100, "machine steal": steal / 100 };
  } catch {
    return {};
  }
}

/** CPU the machine spends over `ms` while the bench does nothing, in % of one core. */
export async function backgroundLoad(ms = 1_000): Promise<number> {
  const a = machineCpu()["machine busy"] ?? Number.NaN;
  await sleep(ms);
  const b = machineCpu()["machine busy"] ?? Number.NaN;
  return (100 * (b - a) * 1000) / ms;
}

export function machineLines(dataDir: string, background: number): string[] {
  return [
    `  machine : ${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}), ${mb(totalmem())} RAM, Linux ${release()}`,
    `  node    : ${process.version}`,
    `  load    : ${background.toFixed(0)}% of one core busy in the second before the bench (other processes); ` +
      `loadavg ${loadavg().map((x) => x.toFixed(2)).join(" ")}`,
    `  data dir: ${dataDir} — ${filesystemOf(dataDir)}`,
  ];
}

/** "RSS = V8 heap + external (Buffers) + rest"; the rest is native: code, SQLite, OpenSSL, malloc, tsx's loader thread. */
export function memoryBreakdown(m: MemorySample): string {
  return (
    `RSS ${mb(m.rss)} = V8 heap ${mb(m.heapTotal)} (${mb(m.heapUsed)} used) + external ${mb(m.external)} ` +
    `(ArrayBuffers ${mb(m.arrayBuffers)}) + rest ${mb(m.rss - m.heapTotal - m.external)}`
  );
}
