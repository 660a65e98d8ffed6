// The floor under the cluster's figures: what the disk and the loopback cost on
// their own, measured in the same run and the same directory as the nodes.

import { closeSync, fdatasyncSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { createServer, connect } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import { join, resolve } from "node:path";
import type { ClusterDatabaseClient } from "../src/node/database-client.ts";
import { now, summarize, type Summary } from "./percentiles.ts";

/**
 * `count` times: write `bytes` bytes and fdatasync. "append" grows the file each
 * time (the size change is metadata the journal must commit); "overwrite" writes
 * into a zero-filled preallocated file, as the WAL does with its 8 MiB segments.
 * Synchronous on purpose (the WAL is): run it while nothing else shares this loop.
 */
export function fsyncLatency(dir: string, mode: "append" | "overwrite", count = 1000, budgetMs = 20_000, bytes = 256): Summary {
  const path = join(dir, `fsync-probe-${mode}-${process.pid}`);
  const fd = openSync(path, "w");
  const buf = Buffer.alloc(bytes, 0x5a);
  const samples: number[] = [];
  try {
    if (mode === "overwrite") {
      writeSync(fd, Buffer.alloc(bytes * count), 0, bytes * count, 0);
      fdatasyncSync(fd);
    }
    const end = now() + budgetMs;
    for (let i = 0; i < count && now() < end; i++) {
      const t = now();
      writeSync(fd, buf, 0, bytes, i * bytes);
      fdatasyncSync(fd);
      samples.push(now() - t);
    }
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
  return summarize(samples);
}

/**
 * Loopback TCP ping-pong between two sockets of this process: 16 bytes each way,
 * Nagle off, `count` sequential round trips after a short warm-up.
 */
export async function tcpRoundTrip(count = 2000, budgetMs = 20_000): Promise<Summary> {
  const SIZE = 16;
  const server = createServer((s) => {
    s.setNoDelay(true);
    s.on("data", (d) => s.write(d));
    s.on("error", () => undefined);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const port = (server.address() as AddressInfo).port;
  const sock: Socket = await new Promise((res, rej) => {
    const s = connect(port, "127.0.0.1", () => res(s));
    s.on("error", rej);
  });
  sock.setNoDelay(true);
  let pending = 0;
  let wake: (() => void) | undefined;
  sock.on("data", (d) => {
    pending -= d.length;
    if (pending <= 0 && wake) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  const ping = Buffer.alloc(SIZE, 1);
  // One watchdog for the whole run (a timer per ping would be measured too).
  let fail: ((e: Error) => void) | undefined;
  const watchdog = setTimeout(() => fail?.(new Error("loopback echo stopped answering")), budgetMs + 2_000);
  const once = () =>
    new Promise<void>((res, rej) => {
      pending = SIZE;
      wake = res;
      fail = rej;
      sock.write(ping);
    });
  const samples: number[] = [];
  const end = now() + budgetMs;
  try {
    for (let i = 0; i < 200 && now() < end; i++) await once();
    for (let i = 0; i < count && now() < end; i++) {
      const t = now();
      await once();
      samples.push(now() - t);
    }
  } finally {
    clearTimeout(watchdog);
    sock.destroy();
    await new Promise<void>((res) => server.close(() => res()));
  }
  return summarize(samples);
}

/** Sequential unary gRPC calls (Database.Status: no disk, no Raft) to one node over mTLS. */
export async function grpcRoundTrip(client: ClusterDatabaseClient, address: string, count = 2000, budgetMs = 20_000): Promise<Summary> {
  const end = now() + budgetMs;
  for (let i = 0; i < 200 && now() < end; i++) await client.status(address);
  const samples: number[] = [];
  for (let i = 0; i < count && now() < end; i++) {
    const t = now();
    await client.status(address);
    samples.push(now() - t);
  }
  return summarize(samples);
}

/** The mount a path lives on, from /proc/mounts: "ext4 on / (/dev/vda)". */
export function filesystemOf(path: string): string {
  try {
    const abs = resolve(path);
    let best = { mnt: "", type: "?", dev: "?" };
    for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
      const [dev, mnt, type] = line.split(" ");
      if (!mnt) continue;
      const inside = abs === mnt || abs.startsWith(mnt.endsWith("/") ? mnt : `${mnt}/`);
      if (inside && mnt.length >= best.mnt.length) best = { mnt, type, dev };
    }
    return `${best.type} on ${best.mnt} (${best.dev})`;
  } catch {
    return "unknown";
  }
}
