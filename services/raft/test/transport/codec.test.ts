import { test } from "node:test";
import assert from "node:assert/strict";
import { emptyMessage, type Message, type MessageType } from "../../src/core/types.ts";
import * as pb from "../../../../proto/gen/raft.ts";
import {
  DecodeError,
  entryFromProto,
  entryToProto,
  hardStateFromProto,
  hardStateToProto,
  messageFromProto,
  messageToProto,
} from "../../src/transport/codec.ts";
import { encodeMessageBatch } from "../../src/transport/batch-encoder.ts";
import { META } from "./helpers.ts";

const TYPES: MessageType[] = [
  "prevote",
  "prevote-resp",
  "vote",
  "vote-resp",
  "append",
  "append-resp",
  "heartbeat",
  "heartbeat-resp",
  "snapshot",
  "timeout-now",
  "read-index",
  "read-index-resp",
  "transfer-leader",
];

/** A message with every field the type may carry set to a non-default value. */
function sample(type: MessageType, i: number): Message {
  const m = emptyMessage(type, "node-a", "node-b", 7 + i);
  m.index = 1000 + i;
  m.logTerm = 6;
  m.commit = 999;
  m.reject = i % 2 === 1;
  m.rejectHint = 17 * i;
  m.context = 2 ** 40 + i; // read contexts may be large
  if (type === "append") {
    m.entries = [
      { index: 1001, term: 7, type: "normal", data: new Uint8Array([1, 2, 3]) },
      { index: 1002, term: 7, type: "conf", data: new Uint8Array([9]) },
      { index: 1003, term: 7, type: "normal", data: new Uint8Array(0) },
    ];
  }
  if (type === "snapshot") m.snapshot = { meta: META, data: new Uint8Array([5, 6, 7]) };
  if (type === "vote" || type === "prevote") m.transfer = true;
  if (type === "timeout-now") m.transfer = false;
  return m;
}

/** Through the wire format, as the transport does. */
function roundTrip(m: Message): Message {
  return messageFromProto(pb.Message.decode(pb.Message.encode(messageToProto(m)).finish()));
}

test("every message type survives encode/decode", () => {
  TYPES.forEach((type, i) => {
    const m = sample(type, i);
    assert.deepStrictEqual(roundTrip(m), m, type);
  });
});

test("a minimal message stays minimal (optional fields absent)", () => {
  const m = emptyMessage("heartbeat", "a", "b", 1);
  const back = roundTrip(m);
  assert.deepStrictEqual(back, m);
  assert.equal("snapshot" in back, false);
  assert.equal("transfer" in back, false);
});

test("decoded bytes are plain Uint8Array, not Buffer", () => {
  const back = roundTrip(sample("append", 0));
  assert.equal(Object.getPrototypeOf(back.entries[0].data), Uint8Array.prototype);
});

test("entries and hard state convert both ways", () => {
  const e = { index: 5, term: 2, type: "conf" as const, data: new Uint8Array([1]) };
  assert.deepStrictEqual(entryFromProto(pb.Entry.decode(pb.Entry.encode(entryToProto(e)).finish())), e);
  const h = { term: 3, vote: "n2", commit: 9 };
  assert.deepStrictEqual(hardStateFromProto(pb.HardState.decode(pb.HardState.encode(hardStateToProto(h)).finish())), h);
});

test("unknown enum values from a newer peer are refused", () => {
  const raw = pb.Message.encode({ ...messageToProto(sample("heartbeat", 0)), type: 99 as pb.MessageType }).finish();
  assert.throws(() => messageFromProto(pb.Message.decode(raw)), DecodeError);
  const badRole = messageToProto(sample("snapshot", 0));
  badRole.snapshot!.meta!.config!.members["a"].role = pb.Role.UNSPECIFIED;
  assert.throws(() => messageFromProto(badRole), DecodeError);
});

test("the generated database types load (their ./raft.js import resolves) and round-trip", async () => {
  const db = await import("../../../../proto/gen/database.ts");
  const req: import("../../../../proto/gen/database.ts").ExecRequest = {
    requestId: "r1",
    statements: [
      {
        sql: "INSERT INTO t VALUES (?, ?, ?)",
        params: [{ kind: { $case: "integer", value: -5 } }, { kind: { $case: "blob", value: Buffer.from([1]) } }, { kind: undefined }],
        expectChanges: 1,
      },
    ],
    preconditions: [{ sql: "SELECT 1", params: [], expectRows: 0, expectValue: undefined, message: "exists" }],
  };
  assert.deepStrictEqual(db.ExecRequest.decode(db.ExecRequest.encode(req).finish()), req);
  const node = { id: "n1", address: "a:1", role: pb.Role.STANDBY, matchIndex: 3, online: true };
  assert.deepStrictEqual(db.NodeStatus.decode(db.NodeStatus.encode(node).finish()), node);
});

/** The generated encoder's bytes, as the receiver's generated decoder expects them. */
function generated(batch: pb.MessageBatch): Buffer {
  return Buffer.from(pb.MessageBatch.encode(batch).finish());
}

test("batches encode byte for byte as the generated encoder does", () => {
  const all = TYPES.map((type, i) => messageToProto(sample(type, i)));
  assert.deepStrictEqual(encodeMessageBatch({ messages: all }), generated({ messages: all }));
  assert.deepStrictEqual(encodeMessageBatch({ messages: [] }), generated({ messages: [] }));
  const minimal = messageToProto(emptyMessage("heartbeat", "", "", 0));
  assert.deepStrictEqual(encodeMessageBatch({ messages: [minimal] }), generated({ messages: [minimal] }));
});

test("batch encoding: varint boundaries, large and non-ASCII fields", () => {
  const numbers = [0, 1, 127, 128, 16_383, 16_384, 2 ** 21, 2 ** 31, 2 ** 32, 2 ** 35 + 3, Number.MAX_SAFE_INTEGER];
  const messages = numbers.map((n, i) => {
    const m = sample(i % 2 ? "append" : "snapshot", i);
    m.from = `nœud-${i}-🚀`;
    m.term = n;
    m.index = n;
    m.commit = n;
    m.context = n;
    m.entries = [{ index: n, term: n, type: "normal", data: new Uint8Array(n % 300_000).fill(i) }];
    return messageToProto(m);
  });
  const ours = encodeMessageBatch({ messages });
  assert.deepStrictEqual(ours, generated({ messages }));
  assert.deepStrictEqual(pb.MessageBatch.decode(ours).messages.map(messageFromProto), messages.map(messageFromProto));
});

test("decoded entries own their bytes: no view of the frame, no second copy of large data", () => {
  const m = sample("append", 0);
  m.entries = [
    { index: 1, term: 1, type: "normal", data: new Uint8Array(64 << 10).fill(7) },
    { index: 2, term: 1, type: "normal", data: new Uint8Array([1, 2, 3]) },
  ];
  const decoded = pb.Message.decode(pb.Message.encode(messageToProto(m)).finish());
  const back = messageFromProto(decoded);
  assert.deepStrictEqual(back, m);
  // The decoder's own 64 KiB copy is kept as it is ...
  assert.equal(back.entries[0].data.buffer, decoded.entries[0].data.buffer);
  // ... and a small one, which the decoder put in a shared pool slab, is copied out of it.
  assert.equal(back.entries[1].data.buffer.byteLength, 3);
});
