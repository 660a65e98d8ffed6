// Encodes a MessageBatch (proto/raft.proto) into one Buffer of exactly its size.
//
// The generated encoder grows its buffer by doubling, then copies the result out
// twice (finish(), then Buffer.from): a leader sending 80 KB entries to two
// followers allocated 5-6 times the entry bytes per follower, garbage that piled
// up between GCs and fragmented the malloc heap. Here the size is computed
// first and every byte is written once. The output is byte-for-byte what the
// generated encoder produces (a test checks), so receivers decode it as before.

import type * as pb from "../../../../proto/gen/raft.ts";

/** Where a message's fields go: first a sizing pass, then a writing pass. */
interface Sink {
  varint(n: number): void;
  bytes(b: Uint8Array): void;
  string(s: string): void;
  /** A length-delimited sub-message written by `body`. */
  nested(body: (s: Sink) => void): void;
}

export function encodeMessageBatch(batch: pb.MessageBatch): Buffer {
  const body = (s: Sink) => {
    for (const m of batch.messages) message(s, 1, (t) => writeMessage(t, m));
  };
  const buf = Buffer.allocUnsafe(sizeOf(body));
  const w = new Writer(buf);
  body(w);
  if (w.pos !== buf.length) throw new Error(`MessageBatch encoder: wrote ${w.pos} of ${buf.length} bytes`);
  return buf;
}

// Field numbers and the order of fields follow proto/raft.proto and the generated
// encoder; proto3 defaults (0, "", false, empty bytes) are left out as it does.

function writeMessage(s: Sink, m: pb.Message): void {
  uint(s, 1, m.type);
  str(s, 2, m.from);
  str(s, 3, m.to);
  uint(s, 4, m.term);
  uint(s, 5, m.index);
  uint(s, 6, m.logTerm);
  for (const e of m.entries) message(s, 7, (t) => writeEntry(t, e));
  uint(s, 8, m.commit);
  uint(s, 9, m.reject ? 1 : 0);
  uint(s, 10, m.rejectHint);
  uint(s, 11, m.context);
  if (m.snapshot) message(s, 12, (t) => writeSnapshot(t, m.snapshot!));
  // `optional bool`: present whenever set, false included.
  if (m.transfer !== undefined) {
    s.varint(13 * 8 + VARINT);
    s.varint(m.transfer ? 1 : 0);
  }
}

function writeEntry(s: Sink, e: pb.Entry): void {
  uint(s, 1, e.index);
  uint(s, 2, e.term);
  uint(s, 3, e.type);
  bytes(s, 4, e.data);
}

function writeSnapshot(s: Sink, snap: pb.Snapshot): void {
  const meta = snap.meta;
  if (meta) {
    message(s, 1, (t) => {
      uint(t, 1, meta.index);
      uint(t, 2, meta.term);
      if (meta.config) message(t, 3, (u) => writeConfig(u, meta.config!));
    });
  }
  bytes(s, 2, snap.data);
}

function writeConfig(s: Sink, c: pb.Config): void {
  for (const [id, member] of Object.entries(c.members)) {
    // A map entry is a message { key = 1; value = 2 }.
    message(s, 1, (t) => {
      str(t, 1, id);
      message(t, 2, (u) => {
        uint(u, 1, member.role);
        str(u, 2, member.address);
      });
    });
  }
}

// ---- fields: tag (field number and wire type), then the value ----

const VARINT = 0;
const LENGTH_DELIMITED = 2;

function uint(s: Sink, n: number, v: number): void {
  if (v === 0) return;
  s.varint(n * 8 + VARINT);
  s.varint(v);
}

function str(s: Sink, n: number, v: string): void {
  if (v === "") return;
  s.varint(n * 8 + LENGTH_DELIMITED);
  s.string(v);
}

function bytes(s: Sink, n: number, v: Uint8Array): void {
  if (v.length === 0) return;
  s.varint(n * 8 + LENGTH_DELIMITED);
  s.bytes(v);
}

function message(s: Sink, n: number, body: (s: Sink) => void): void {
  s.varint(n * 8 + LENGTH_DELIMITED);
  s.nested(body);
}

// ---- the two passes ----

function varintSize(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`MessageBatch encoder: ${n} is not a non-negative integer`);
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function sizeOf(body: (s: Sink) => void): number {
  let size = 0;
  const counter: Sink = {
    varint: (n) => (size += varintSize(n)),
    bytes: (b) => (size += varintSize(b.length) + b.length),
    string: (v) => {
      const len = Buffer.byteLength(v, "utf8");
      size += varintSize(len) + len;
    },
    nested: (inner) => {
      const len = sizeOf(inner);
      size += varintSize(len) + len;
    },
  };
  body(counter);
  return size;
}

class Writer implements Sink {
  pos = 0;

  constructor(private readonly buf: Buffer) {}

  varint(n: number): void {
    varintSize(n); // range check
    while (n >= 128) {
      this.buf[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  string(s: string): void {
    this.varint(Buffer.byteLength(s, "utf8"));
    this.pos += this.buf.write(s, this.pos, "utf8");
  }

  nested(body: (s: Sink) => void): void {
    this.varint(sizeOf(body));
    body(this);
  }
}
