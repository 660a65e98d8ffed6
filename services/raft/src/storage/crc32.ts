// CRC32C (Castagnoli), the checksum guarding every WAL record. Castagnoli over
// IEEE because it detects more bit patterns at the same cost; slicing-by-8 tables
// because a Ready batch can carry megabytes of entry data and the checksum sits
// on the fsync path.

const POLY = 0x82f63b78; // reflected Castagnoli polynomial

/** TABLES[k][b]: CRC of byte b followed by k zero bytes. */
const TABLES: Uint32Array[] = buildTables();

function buildTables(): Uint32Array[] {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    tables[0][b] = c >>> 0;
  }
  for (let b = 0; b < 256; b++) {
    let c = tables[0][b];
    for (let t = 1; t < 8; t++) {
      c = (c >>> 8) ^ tables[0][c & 0xff];
      tables[t][b] = c >>> 0;
    }
  }
  return tables;
}

/**
 * CRC32C of buf[start, end). Pass a previous result as `crc` to continue a
 * checksum over discontiguous ranges (same convention as zlib's crc32()).
 */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let c = ~crc >>> 0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = c ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    c =
      t7[lo & 0xff] ^
      t6[(lo >>> 8) & 0xff] ^
      t5[(lo >>> 16) & 0xff] ^
      t4[lo >>> 24] ^
      t3[buf[i + 4]] ^
      t2[buf[i + 5]] ^
      t1[buf[i + 6]] ^
      t0[buf[i + 7]];
  }
  for (; i < end; i++) c = (c >>> 8) ^ t0[(c ^ buf[i]) & 0xff];
  return ~c >>> 0;
}
