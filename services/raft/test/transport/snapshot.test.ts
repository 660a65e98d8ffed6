import { test } from "node:test";
import assert from "node:assert/strict";
import { emptyMessage, type Message } from "../../src/core/types.ts";
import type { SnapshotSource } from "../../src/transport/snapshot.ts";
import { connect, META, pattern, startNode, waitFor } from "./helpers.ts";

const CHUNK = 256 << 10;

function snapshotMessage(from: string, to: string): Message {
  const m = emptyMessage("snapshot", from, to, 9);
  m.snapshot = { meta: META, data: new Uint8Array(0) };
  return m;
}

/** Serves `data`, recording the offsets read; `hook` may delay or fail a read. */
function source(data: Buffer, reads: number[], hook?: (offset: number) => Promise<void>): SnapshotSource {
  return {
    size: data.length,
    read: async (offset, length) => {
      reads.push(offset);
      await hook?.(offset);
      return data.subarray(offset, offset + length);
    },
  };
}

test("a few MB snapshot streams in chunks and the core gets a snapshot message", async () => {
  const [a, b] = await Promise.all([startNode("a", { snapshotChunkSize: CHUNK }), startNode("b")]);
  try {
    connect([a, b]);
    const data = pattern(5 * (1 << 20) + 12345);
    const reads: number[] = [];
    await a.transport.sendSnapshot(snapshotMessage("a", "b"), source(data, reads));

    assert.equal(b.snapshots.finished.length, 1);
    assert.ok(b.snapshots.finished[0].data.equals(data), "bytes intact");
    assert.deepStrictEqual(b.snapshots.finished[0].meta, META);
    assert.equal(b.snapshots.finished[0].from, "a");
    assert.equal(reads.length, Math.ceil(data.length / CHUNK));
    // Delivered by the time sendSnapshot resolves: the receiver answers after handing it over.
    assert.deepStrictEqual(b.received, [snapshotMessage("a", "b")]);
  } finally {
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
});

test("an empty snapshot still delivers its message", async () => {
  const [a, b] = await Promise.all([startNode("a"), startNode("b")]);
  try {
    connect([a, b]);
    await a.transport.sendSnapshot(snapshotMessage("a", "b"), source(Buffer.alloc(0), []));
    assert.equal(b.snapshots.finished[0].data.length, 0);
    assert.equal(b.received[0].type, "snapshot");
  } finally {
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
});

test("a transfer interrupted half-way resumes from the receiver's offset", async () => {
  const [a, b] = await Promise.all([startNode("a", { snapshotChunkSize: CHUNK }), startNode("b")]);
  try {
    connect([a, b]);
    const data = pattern(4 << 20, 7);
    const half = data.length / 2;

    // First attempt: once the receiver holds at least 1 MiB, the read at the half-way mark fails.
    const failing = source(data, [], async (offset) => {
      if (offset < half) return;
      await waitFor(() => b.snapshots.held >= 1 << 20, "receiver progress");
      throw new Error("disk hiccup");
    });
    await assert.rejects(a.transport.sendSnapshot(snapshotMessage("a", "b"), failing), /disk hiccup/);
    assert.equal(b.snapshots.finished.length, 0);
    assert.deepStrictEqual(b.received, []);

    // Second attempt asks where to resume and reads only from there.
    const reads: number[] = [];
    await a.transport.sendSnapshot(snapshotMessage("a", "b"), source(data, reads));
    const resumedAt = reads[0];
    assert.ok(resumedAt >= 1 << 20 && resumedAt <= half, `resumed at ${resumedAt}`);
    assert.equal(resumedAt % CHUNK, 0);
    assert.equal(reads.length, (data.length - resumedAt) / CHUNK);
    assert.equal(b.snapshots.begins, 1, "the same sink carried on");
    assert.equal(b.snapshots.aborts, 0);
    assert.ok(b.snapshots.finished[0].data.equals(data), "bytes intact");
    assert.deepStrictEqual(b.received, [snapshotMessage("a", "b")]);
  } finally {
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
});

test("a newer snapshot from the same sender aborts the unfinished one", async () => {
  const [a, b] = await Promise.all([startNode("a", { snapshotChunkSize: CHUNK }), startNode("b")]);
  try {
    connect([a, b]);
    const data = pattern(1 << 20, 3);
    const failing = source(data, [], async (offset) => {
      if (offset > 0) throw new Error("stop");
    });
    await assert.rejects(a.transport.sendSnapshot(snapshotMessage("a", "b"), failing), /stop/);

    const newer = snapshotMessage("a", "b");
    newer.snapshot!.meta = { ...META, index: META.index + 10 };
    const reads: number[] = [];
    await a.transport.sendSnapshot(newer, source(data, reads));
    assert.equal(reads[0], 0, "a different snapshot starts from scratch");
    await waitFor(() => b.snapshots.aborts === 1, "old sink aborted");
    assert.equal(b.snapshots.begins, 2);
    assert.equal(b.snapshots.finished[0].meta.index, META.index + 10);
  } finally {
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
});

test("sendSnapshot fails cleanly without a receiver, an address, or after close", async () => {
  const [a, b] = await Promise.all([startNode("a"), startNode("b", { snapshots: undefined })]);
  connect([a, b]);
  await assert.rejects(a.transport.sendSnapshot(snapshotMessage("a", "b"), source(pattern(10), [])), /no snapshot receiver/);
  await assert.rejects(a.transport.sendSnapshot(snapshotMessage("a", "zed"), source(pattern(10), [])), /no address/);
  await Promise.all([a.transport.close(), b.transport.close()]);
  await assert.rejects(a.transport.sendSnapshot(snapshotMessage("a", "b"), source(pattern(10), [])), /closed/);
});
