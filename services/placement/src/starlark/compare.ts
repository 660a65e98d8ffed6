// Equality and ordering of values: ==, <, sorted, min and max. Deeply nested
// values are compared up to a depth, so a cyclic or very deep list gives an error
// rather than a JS stack overflow.
import { runtimeError } from "./errors.ts";
import {
  StarDict, StarFloat, StarList, StarRange, StarStruct, StarTuple, toBig, typeName, type Value,
} from "./values.ts";

const MAX_COMPARE_DEPTH = 200;

export function equals(a: Value, b: Value, depth = 0): boolean {
  if (a === b) return typeof a !== "object" || a === null || !(a instanceof StarFloat) || !Number.isNaN(a.v);
  const ta = typeof a;
  const tb = typeof b;
  if ((ta === "number" || ta === "bigint") && (tb === "number" || tb === "bigint")) return false; // canonical ints
  if (isNumeric(a) && isNumeric(b)) return compareNumbers(a, b) === 0;
  if (ta !== "object" || tb !== "object" || a === null || b === null) return false;
  if (depth > MAX_COMPARE_DEPTH) throw runtimeError("comparison exceeds maximum nesting depth");
  if (a instanceof StarList && b instanceof StarList) return seqEquals(a.elems, b.elems, depth);
  if (a instanceof StarTuple && b instanceof StarTuple) return seqEquals(a.elems, b.elems, depth);
  if (a instanceof StarDict && b instanceof StarDict) {
    if (a.size !== b.size) return false;
    for (const [k, [, va]] of a.map) {
      const eb = b.map.get(k);
      if (!eb || !equals(va, eb[1], depth + 1)) return false;
    }
    return true;
  }
  if (a instanceof StarRange && b instanceof StarRange) {
    const la = a.length;
    if (la !== b.length) return false;
    return la === 0 || (a.start === b.start && (la === 1 || a.step === b.step));
  }
  if (a instanceof StarStruct && b instanceof StarStruct) {
    if (a.typeLabel !== b.typeLabel || a.fields.size !== b.fields.size) return false;
    for (const [k, va] of a.fields) {
      const vb = b.fields.get(k);
      if (vb === undefined || !equals(va, vb, depth + 1)) return false;
    }
    return true;
  }
  return false;
}

function seqEquals(a: readonly Value[], b: readonly Value[], depth: number): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!equals(a[i], b[i], depth + 1)) return false;
  return true;
}

export function isNumeric(v: Value): v is number | bigint | StarFloat {
  return typeof v === "number" || typeof v === "bigint" || v instanceof StarFloat;
}

/** -1, 0, 1; NaN compares as unordered (returns NaN). */
export function compareNumbers(a: number | bigint | StarFloat, b: number | bigint | StarFloat): number {
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a !== "object" && typeof b !== "object") {
    const x = toBig(a);
    const y = toBig(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = a instanceof StarFloat ? a.v : a;
  const y = b instanceof StarFloat ? b.v : b;
  if (typeof x === "number" && Number.isNaN(x)) return NaN;
  if (typeof y === "number" && Number.isNaN(y)) return NaN;
  // Mixed bigint / float: JS relational operators compare them exactly.
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Ordered comparison as used by <, sorted, min and max. */
export function compare(a: Value, b: Value, depth = 0): number {
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  if (isNumeric(a) && isNumeric(b)) return compareNumbers(a, b);
  if (typeof a === "boolean" && typeof b === "boolean") return a === b ? 0 : a ? 1 : -1;
  if (depth > MAX_COMPARE_DEPTH) throw runtimeError("comparison exceeds maximum nesting depth");
  if ((a instanceof StarList && b instanceof StarList) || (a instanceof StarTuple && b instanceof StarTuple)) {
    const x = a.elems;
    const y = b.elems;
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) {
      if (!equals(x[i], y[i], depth + 1)) return compare(x[i], y[i], depth + 1);
    }
    return x.length - y.length < 0 ? -1 : x.length > y.length ? 1 : 0;
  }
  throw runtimeError(`unsupported comparison: ${typeName(a)} <=> ${typeName(b)}`);
}

