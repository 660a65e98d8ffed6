// Arithmetic, comparison, membership, indexing and slicing. Ints stay JS numbers
// while they are safe integers and switch to bigint past that, so overflow never
// silently loses precision (Starlark ints are unbounded).
import type { BinaryOp } from "./ast.ts";
import { compare, equals } from "./compare.ts";
import { runtimeError } from "./errors.ts";
import { percentFormat } from "./format.ts";
import { repr } from "./repr.ts";
import {
  StarDict, StarFloat, StarList, StarRange, StarTuple, isInt, normInt, toBig, truth as truthOf,
  typeName, type Thread, type Value,
} from "./values.ts";

const SMALL = 2 ** 31;

export function toFloat(v: number | bigint | StarFloat): number {
  if (v instanceof StarFloat) return v.v;
  if (typeof v === "number") return v;
  const f = Number(v);
  if (!Number.isFinite(f)) throw runtimeError("int too large to convert to float");
  return f;
}

function isNum(v: Value): v is number | bigint | StarFloat {
  return typeof v === "number" || typeof v === "bigint" || v instanceof StarFloat;
}

function intAdd(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === "number" && typeof b === "number") {
    const r = a + b;
    if (Number.isSafeInteger(r)) return r;
  }
  return normInt(toBig(a) + toBig(b));
}
function intSub(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === "number" && typeof b === "number") {
    const r = a - b;
    if (Number.isSafeInteger(r)) return r;
  }
  return normInt(toBig(a) - toBig(b));
}
function intMul(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === "number" && typeof b === "number") {
    const r = a * b;
    if (Number.isSafeInteger(r)) return r === 0 ? 0 : r; // no -0 for ints
  }
  return normInt(toBig(a) * toBig(b));
}
export function intFloorDiv(a: number | bigint, b: number | bigint): number | bigint {
  if (b === 0 || b === 0n) throw runtimeError("integer division by zero");
  if (typeof a === "number" && typeof b === "number" && Math.abs(a) < SMALL && Math.abs(b) < SMALL) {
    const q = Math.floor(a / b);
    return q === 0 ? 0 : q;
  }
  const x = toBig(a);
  const y = toBig(b);
  let q = x / y;
  if ((x % y !== 0n) && ((x < 0n) !== (y < 0n))) q -= 1n;
  return normInt(q);
}
function intMod(a: number | bigint, b: number | bigint): number | bigint {
  if (b === 0 || b === 0n) throw runtimeError("integer modulo by zero");
  if (typeof a === "number" && typeof b === "number") {
    let r = a % b;
    if (r !== 0 && (r < 0) !== (b < 0)) r += b;
    return r === 0 ? 0 : r;
  }
  const x = toBig(a);
  const y = toBig(b);
  let r = x % y;
  if (r !== 0n && (r < 0n) !== (y < 0n)) r += y;
  return normInt(r);
}

function floatMod(a: number, b: number): number {
  if (b === 0) throw runtimeError("floating-point modulo by zero");
  let r = a % b;
  if (r !== 0 && (r < 0) !== (b < 0)) r += b;
  return r;
}

function repeat(th: Thread, seq: Value, n: number | bigint): Value {
  const count = typeof n === "bigint" ? (n > 0n ? Infinity : 0) : Math.max(0, n);
  if (typeof seq === "string") {
    if (count === 0 || seq.length === 0) return "";
    th.alloc(seq.length * count * 2); // refuses before building a huge string
    return seq.repeat(count);
  }
  const elems = (seq as StarList | StarTuple).elems;
  const out: Value[] = [];
  if (count > 0 && elems.length > 0) {
    th.alloc(elems.length * count * 8);
    for (let i = 0; i < count; i++) for (const e of elems) out.push(e);
  }
  return seq instanceof StarList ? new StarList(out) : new StarTuple(out);
}

function unsupported(op: string, x: Value, y: Value): never {
  throw runtimeError(`unsupported binary operation: ${typeName(x)} ${op} ${typeName(y)}`);
}

export function binary(th: Thread, op: BinaryOp, x: Value, y: Value): Value {
  switch (op) {
    case "+":
      if (typeof x === "number" && typeof y === "number") {
        const r = x + y;
        if (Number.isSafeInteger(r)) return r;
      }
      if (isInt(x) && isInt(y)) return intAdd(x, y);
      if (typeof x === "string" && typeof y === "string") {
        th.alloc((x.length + y.length) * 2);
        return x + y;
      }
      if (isNum(x) && isNum(y)) return new StarFloat(toFloat(x) + toFloat(y));
      if (x instanceof StarList && y instanceof StarList) {
        th.alloc((x.elems.length + y.elems.length) * 8);
        return new StarList(x.elems.concat(y.elems));
      }
      if (x instanceof StarTuple && y instanceof StarTuple) {
        th.alloc((x.elems.length + y.elems.length) * 8);
        return new StarTuple(x.elems.concat(y.elems));
      }
      return unsupported(op, x, y);
    case "-":
      if (isInt(x) && isInt(y)) return intSub(x, y);
      if (isNum(x) && isNum(y)) return new StarFloat(toFloat(x) - toFloat(y));
      return unsupported(op, x, y);
    case "*":
      if (isInt(x) && isInt(y)) return intMul(x, y);
      if (isNum(x) && isNum(y)) return new StarFloat(toFloat(x) * toFloat(y));
      if (isInt(y) && (typeof x === "string" || x instanceof StarList || x instanceof StarTuple)) return repeat(th, x, y);
      if (isInt(x) && (typeof y === "string" || y instanceof StarList || y instanceof StarTuple)) return repeat(th, y, x);
      return unsupported(op, x, y);
    case "/":
      if (isNum(x) && isNum(y)) {
        const d = toFloat(y);
        if (d === 0) throw runtimeError("floating-point division by zero");
        return new StarFloat(toFloat(x) / d);
      }
      return unsupported(op, x, y);
    case "//":
      if (isInt(x) && isInt(y)) return intFloorDiv(x, y);
      if (isNum(x) && isNum(y)) {
        const d = toFloat(y);
        if (d === 0) throw runtimeError("floating-point division by zero");
        return new StarFloat(Math.floor(toFloat(x) / d));
      }
      return unsupported(op, x, y);
    case "%":
      if (typeof x === "string") return percentFormat(th, x, y);
      if (isInt(x) && isInt(y)) return intMod(x, y);
      if (isNum(x) && isNum(y)) return new StarFloat(floatMod(toFloat(x), toFloat(y)));
      return unsupported(op, x, y);
    case "&":
    case "^":
      if (isInt(x) && isInt(y)) return bitwise(op, x, y);
      return unsupported(op, x, y);
    case "|":
      if (isInt(x) && isInt(y)) return bitwise(op, x, y);
      if (x instanceof StarDict && y instanceof StarDict) {
        th.alloc((x.size + y.size) * 16);
        const d = new StarDict();
        for (const [k, v] of x.map.values()) d.set(k, v);
        for (const [k, v] of y.map.values()) d.set(k, v);
        return d;
      }
      return unsupported(op, x, y);
    case "<<":
    case ">>":
      if (isInt(x) && isInt(y)) {
        const n = toBig(y);
        if (n < 0n) throw runtimeError(`negative shift count: ${n}`);
        if (op === "<<") {
          if (n >= 512n) throw runtimeError(`shift count too large: ${n}`);
          return normInt(toBig(x) << n);
        }
        return normInt(toBig(x) >> n);
      }
      return unsupported(op, x, y);
    case "==":
      return equals(x, y);
    case "!=":
      return !equals(x, y);
    case "<":
      return orderOp(x, y, op) < 0;
    case ">":
      return orderOp(x, y, op) > 0;
    case "<=":
      return orderOp(x, y, op) <= 0;
    case ">=":
      return orderOp(x, y, op) >= 0;
    case "in":
      return contains(y, x);
    case "not in":
      return !contains(y, x);
  }
}

function orderOp(x: Value, y: Value, op: string): number {
  if (typeof x === "number" && typeof y === "number") return x - y;
  try {
    return compare(x, y);
  } catch (e) {
    if (e instanceof Error && e.message.includes("unsupported comparison")) {
      throw runtimeError(`unsupported comparison: ${typeName(x)} ${op} ${typeName(y)}`);
    }
    throw e;
  }
}

function bitwise(op: "&" | "|" | "^", x: number | bigint, y: number | bigint): number | bigint {
  if (typeof x === "number" && typeof y === "number" && Math.abs(x) < SMALL && Math.abs(y) < SMALL) {
    return op === "&" ? x & y : op === "|" ? x | y : x ^ y;
  }
  const a = toBig(x);
  const b = toBig(y);
  return normInt(op === "&" ? a & b : op === "|" ? a | b : a ^ b);
}

export function unary(op: "-" | "+" | "~" | "not", x: Value): Value {
  switch (op) {
    case "not":
      return !truthOf(x);
    case "-":
      if (typeof x === "number") return x === 0 ? 0 : -x;
      if (typeof x === "bigint") return normInt(-x);
      if (x instanceof StarFloat) return new StarFloat(-x.v);
      break;
    case "+":
      if (isNum(x)) return x;
      break;
    case "~":
      if (typeof x === "number") return Math.abs(x) < SMALL ? ~x : normInt(~BigInt(x));
      if (typeof x === "bigint") return normInt(~x);
      break;
  }
  throw runtimeError(`unsupported unary operation: ${op}${typeName(x)}`);
}

export function contains(container: Value, x: Value): boolean {
  if (typeof container === "string") {
    if (typeof x !== "string") throw runtimeError(`'in <string>' requires string as left operand, not ${typeName(x)}`);
    return container.includes(x);
  }
  if (container instanceof StarList || container instanceof StarTuple) {
    for (const e of container.elems) if (equals(e, x)) return true;
    return false;
  }
  if (container instanceof StarDict) return container.has(x);
  if (container instanceof StarRange) {
    if (!isInt(x) && !(x instanceof StarFloat)) return false;
    const f = x instanceof StarFloat ? x.v : Number(x);
    if (!Number.isInteger(f)) return false;
    const n = container.length;
    if (n === 0) return false;
    const i = (f - container.start) / container.step;
    return Number.isInteger(i) && i >= 0 && i < n;
  }
  throw runtimeError(`unsupported binary operation: ${typeName(x)} in ${typeName(container)}`);
}

// ---- indexing and slicing ----------------------------------------------------------

export function asIndex(v: Value, what: string): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return v > 0n ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER;
  throw runtimeError(`${what} must be an int, not ${typeName(v)}`);
}

export function index(x: Value, key: Value): Value {
  if (x instanceof StarDict) {
    const v = x.get(key);
    if (v === undefined) throw runtimeError(`key ${repr(key)} not in dict`);
    return v;
  }
  if (x instanceof StarList || x instanceof StarTuple || typeof x === "string" || x instanceof StarRange) {
    const n = typeof x === "string" ? x.length : x instanceof StarRange ? x.length : x.elems.length;
    let i = asIndex(key, `${typeName(x)} index`);
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw runtimeError(`index ${repr(key)} out of range: ${typeName(x)} has length ${n}`);
    if (typeof x === "string") return x[i];
    if (x instanceof StarRange) return x.at(i);
    return x.elems[i];
  }
  throw runtimeError(`unhandled index operation ${typeName(x)}[${typeName(key)}]`);
}

/** Resolve slice bounds the way Python and Starlark do. */
export function sliceIndices(n: number, start: Value, stop: Value, step: Value): [number, number, number] {
  const s = step === null ? 1 : asIndex(step, "slice step");
  if (s === 0) throw runtimeError("slice step cannot be zero");
  const lower = s > 0 ? 0 : -1;
  const upper = s > 0 ? n : n - 1;
  const adjust = (v: Value, dflt: number): number => {
    if (v === null) return dflt;
    let i = asIndex(v, "slice index");
    if (i < 0) {
      i += n;
      if (i < lower) i = lower;
    } else if (i > upper) {
      i = upper;
    }
    return i;
  };
  return [adjust(start, s > 0 ? lower : upper), adjust(stop, s > 0 ? upper : lower), s];
}

export function slice(th: Thread, x: Value, start: Value, stop: Value, step: Value): Value {
  const n = typeof x === "string" ? x.length : x instanceof StarRange ? x.length
    : x instanceof StarList || x instanceof StarTuple ? x.elems.length : -1;
  if (n < 0) throw runtimeError(`invalid slice operand ${typeName(x)}`);
  const [i0, i1, s] = sliceIndices(n, start, stop, step);
  if (x instanceof StarRange) {
    const count = s > 0 ? Math.max(0, Math.ceil((i1 - i0) / s)) : Math.max(0, Math.ceil((i0 - i1) / -s));
    const first = x.at(i0);
    return new StarRange(first, first + count * x.step * s, x.step * s);
  }
  if (s === 1) {
    const a = Math.max(i0, 0);
    const b = Math.max(i1, a);
    if (typeof x === "string") return x.slice(a, b);
    th.alloc((b - a) * 8);
    const elems = (x as StarList | StarTuple).elems.slice(a, b);
    return x instanceof StarList ? new StarList(elems) : new StarTuple(elems);
  }
  if (typeof x === "string") {
    let out = "";
    for (let i = i0; s > 0 ? i < i1 : i > i1; i += s) out += x[i];
    return out;
  }
  const src = (x as StarList | StarTuple).elems;
  const out: Value[] = [];
  for (let i = i0; s > 0 ? i < i1 : i > i1; i += s) out.push(src[i]);
  th.alloc(out.length * 8);
  return x instanceof StarList ? new StarList(out) : new StarTuple(out);
}

/** x[key] = v for lists and dicts; frozen values and iterations in progress refuse. */
export function setIndex(th: Thread, obj: Value, key: Value, v: Value): void {
  if (obj instanceof StarList) {
    obj.checkMutable("assign to element of");
    const n = obj.elems.length;
    let i = typeof key === "number" ? key : NaN;
    if (Number.isNaN(i)) throw runtimeError(`list index must be an int, not ${typeName(key)}`);
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw runtimeError(`index ${repr(key)} out of range: list has length ${n}`);
    obj.elems[i] = v;
    return;
  }
  if (obj instanceof StarDict) {
    obj.checkMutable("insert into");
    th.alloc(16);
    obj.set(key, v);
    return;
  }
  throw runtimeError(`${typeName(obj)} value does not support item assignment`);
}
