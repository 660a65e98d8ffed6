// SQL parameter values: what callers bind and what queries return. Commands
// travel through the Raft log as JSON, which cannot carry bigints, blobs, -0
// or non-finite numbers, so those are tagged on the wire to round-trip exactly.
import { z } from "zod";

/** A value SQLite can bind or return: NULL, REAL/INTEGER (number or bigint), TEXT, BLOB. */
export type Param = null | number | bigint | string | Uint8Array;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export const ParamSchema: z.ZodType<Param> = z.union([
  z.null(),
  z.number(), // zod 4 refuses NaN and ±Infinity: SQLite would turn NaN into NULL anyway
  z.bigint().refine((v) => v >= INT64_MIN && v <= INT64_MAX, "bigint outside SQLite's 64-bit integer range"),
  z.string(),
  z.instanceof(Uint8Array),
]);

/** Wire form: plain JSON for the common cases, [tag, text] for the rest. */
export type WireParam = null | number | string | ["i" | "b" | "f", string];

export const WireParamSchema: z.ZodType<WireParam> = z.union([
  z.null(),
  z.number(),
  z.string(),
  z.tuple([z.enum(["i", "b", "f"]), z.string()]),
]);

export function paramToWire(v: Param): WireParam {
  if (v === null || typeof v === "string") return v;
  if (typeof v === "bigint") return ["i", v.toString()];
  if (typeof v === "number") {
    // JSON would print -0 as 0 and cannot print NaN/Infinity at all.
    if (Object.is(v, -0)) return ["f", "-0"]; // String(-0) is "0"
    return Number.isFinite(v) ? v : ["f", String(v)];
  }
  return ["b", Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64")];
}

export function paramFromWire(w: WireParam): Param {
  if (!Array.isArray(w)) return w;
  const [tag, text] = w;
  if (tag === "i") {
    if (!/^-?\d+$/.test(text)) throw new Error(`bad integer param ${JSON.stringify(text)}`);
    return BigInt(text);
  }
  if (tag === "f") {
    if (!["-0", "NaN", "Infinity", "-Infinity"].includes(text)) throw new Error(`bad float param ${JSON.stringify(text)}`);
    return Number(text);
  }
  return new Uint8Array(Buffer.from(text, "base64"));
}

export type Params = Param[] | Record<string, Param>;
export type WireParams = WireParam[] | Record<string, WireParam>;

export const ParamsSchema: z.ZodType<Params> = z.union([z.array(ParamSchema), z.record(z.string(), ParamSchema)]);
export const WireParamsSchema: z.ZodType<WireParams> = z.union([
  z.array(WireParamSchema),
  z.record(z.string(), WireParamSchema),
]);

export function paramsToWire(p: Params): WireParams {
  if (Array.isArray(p)) return p.map(paramToWire);
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, paramToWire(v)]));
}

export function paramsFromWire(p: WireParams): Params {
  if (Array.isArray(p)) return p.map(paramFromWire);
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, paramFromWire(v)]));
}

/**
 * A value read from SQLite (statements run with safeIntegers, so INTEGERs are
 * bigints) turned into a Param: integers that fit a double become numbers, blobs
 * become plain Uint8Arrays (better-sqlite3 returns Buffers).
 */
export function fromSqlite(v: unknown): Param {
  if (typeof v === "bigint") {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (v instanceof Uint8Array) return new Uint8Array(v);
  return v as Param;
}

/** Equality as SQL would see it: numbers compare by value whatever their JS type. */
export function paramEquals(a: Param, b: Param): boolean {
  const numeric = (x: Param) => typeof x === "number" || typeof x === "bigint";
  if (numeric(a) && numeric(b)) {
    const integral = (x: number | bigint) => typeof x === "bigint" || Number.isInteger(x);
    const x = a as number | bigint;
    const y = b as number | bigint;
    if (integral(x) && integral(y)) return BigInt(x) === BigInt(y);
    return Number(x) === Number(y);
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((byte, i) => byte === b[i]);
  }
  return a === b;
}

/** For error messages. */
export function describeParam(v: Param | undefined): string {
  if (v === undefined) return "nothing";
  if (typeof v === "bigint") return `${v}`;
  if (v instanceof Uint8Array) return `blob(${v.length} bytes)`;
  return JSON.stringify(v);
}
