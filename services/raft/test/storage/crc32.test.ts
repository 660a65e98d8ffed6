import { test } from "node:test";
import assert from "node:assert/strict";
import { crc32c } from "../../src/storage/crc32.ts";

// Bit-at-a-time reference, to check the sliced tables against.
function reference(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test("crc32c matches the standard check values", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // 32 zero bytes (RFC 3720 B.4)
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
});

test("crc32c agrees with a bitwise reference at every length and alignment", () => {
  const buf = new Uint8Array(100);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff;
  for (let start = 0; start < 9; start++) {
    for (let end = start; end <= buf.length; end += 3) {
      assert.equal(crc32c(buf, start, end), reference(buf.subarray(start, end)), `[${start}, ${end})`);
    }
  }
});

test("crc32c continues across ranges", () => {
  const buf = Buffer.from("the quick brown fox jumps over the lazy dog");
  for (const cut of [0, 1, 8, 20, buf.length]) {
    assert.equal(crc32c(buf, cut, buf.length, crc32c(buf, 0, cut)), crc32c(buf));
  }
});
