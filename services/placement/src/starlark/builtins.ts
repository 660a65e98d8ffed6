// The universe: built-in functions every script can call. Nothing here touches
// I/O; print goes to the host's log sink.
import { noKwargs, unpack, wantInt, wantString } from "./args.ts";
import { compare } from "./compare.ts";
import { runtimeError } from "./errors.ts";
import { attribute, attributeNames, hasAttribute, updatePairs } from "./methods.ts";
import { toFloat } from "./operators.ts";
import { repr, str } from "./repr.ts";
import {
  Builtin, StarDict, StarFloat, StarList, StarRange, StarTuple, iterableElems, len, normInt, toArray,
  truth, typeName, type BuiltinImpl, type Kwargs, type Thread, type Value,
} from "./values.ts";

function joinArgs(args: Value[], kwargs: Kwargs, fname: string): string {
  const [sep] = unpack(fname, [], kwargs, ["sep?"]);
  const s = sep === undefined ? " " : wantString(fname, sep, "sep");
  return args.map(str).join(s);
}

function parseIntString(s: string, base: number): number | bigint {
  let t = s.trim().replace(/_/g, "");
  let sign = 1n;
  if (t.startsWith("-") || t.startsWith("+")) {
    if (t[0] === "-") sign = -1n;
    t = t.slice(1);
  }
  const prefix = t.slice(0, 2).toLowerCase();
  const prefixBase = prefix === "0x" ? 16 : prefix === "0o" ? 8 : prefix === "0b" ? 2 : 0;
  if (base === 0) {
    if (prefixBase) {
      base = prefixBase;
      t = t.slice(2);
    } else {
      if (t.length > 1 && t[0] === "0" && /[1-9]/.test(t)) throw new Error("leading zeros");
      base = 10;
    }
  } else if (prefixBase === base) {
    t = t.slice(2);
  }
  if (base < 2 || base > 36) throw new Error("base");
  const digits = "0123456789abcdefghijklmnopqrstuvwxyz".slice(0, base);
  if (t === "" || ![...t.toLowerCase()].every((c) => digits.includes(c))) throw new Error("digits");
  let v = 0n;
  const b = BigInt(base);
  for (const c of t.toLowerCase()) v = v * b + BigInt(digits.indexOf(c));
  return normInt(sign * v);
}

function minMax(th: Thread, args: Value[], kwargs: Kwargs, fname: string, sign: number): Value {
  const [key, dflt] = unpack(fname, [], kwargs, ["key?", "default?"]);
  const items = args.length === 1 ? toArray(th, args[0], fname) : args;
  if (args.length === 0) throw runtimeError(`${fname}: expected at least one argument`);
  if (items.length === 0) {
    if (dflt !== undefined) return dflt;
    throw runtimeError(`${fname}: argument is an empty sequence`);
  }
  let best = items[0];
  let bestKey = key === undefined || key === null ? best : th.call(key, [best], null);
  for (let i = 1; i < items.length; i++) {
    th.step();
    const k = key === undefined || key === null ? items[i] : th.call(key, [items[i]], null);
    if (compare(k, bestKey) * sign > 0) {
      best = items[i];
      bestKey = k;
    }
  }
  return best;
}

const universe: [string, BuiltinImpl][] = [
  ["abs", (_th, args, kwargs) => {
    const [x] = unpack("abs", args, kwargs, ["x"]);
    if (typeof x === "number") return Math.abs(x);
    if (typeof x === "bigint") return normInt(x < 0n ? -x : x);
    if (x instanceof StarFloat) return new StarFloat(Math.abs(x.v));
    throw runtimeError(`abs: got ${typeName(x!)}, want int or float`);
  }],
  ["all", (th, args, kwargs) => {
    const [x] = unpack("all", args, kwargs, ["x"]);
    return toArray(th, x!, "all").every(truth);
  }],
  ["any", (th, args, kwargs) => {
    const [x] = unpack("any", args, kwargs, ["x"]);
    return toArray(th, x!, "any").some(truth);
  }],
  ["bool", (_th, args, kwargs) => {
    const [x] = unpack("bool", args, kwargs, ["x?"]);
    return x === undefined ? false : truth(x);
  }],
  ["dict", (th, args, kwargs) => {
    if (args.length > 1) throw runtimeError(`dict: got ${args.length} arguments, want at most 1`);
    const d = new StarDict();
    if (args.length === 1) updatePairs(th, d, args[0], "dict");
    for (const [k, v] of kwargs ?? []) d.set(k, v);
    return d;
  }],
  ["dir", (th, args, kwargs) => {
    const [x] = unpack("dir", args, kwargs, ["x"]);
    const names = attributeNames(x!);
    th.alloc(names.length * 8);
    return new StarList(names);
  }],
  ["enumerate", (th, args, kwargs) => {
    const [x, startV] = unpack("enumerate", args, kwargs, ["x", "start?"]);
    const start = startV === undefined ? 0 : wantInt("enumerate", startV, "start");
    const elems = toArray(th, x!, "enumerate");
    th.alloc(elems.length * 40);
    return new StarList(elems.map((e, i) => new StarTuple([start + i, e])));
  }],
  ["fail", (_th, args, kwargs) => {
    throw runtimeError(`fail: ${joinArgs(args, kwargs, "fail")}`);
  }],
  ["float", (_th, args, kwargs) => {
    const [x] = unpack("float", args, kwargs, ["x?"]);
    if (x === undefined) return new StarFloat(0);
    if (x instanceof StarFloat) return x;
    if (typeof x === "number" || typeof x === "bigint") return new StarFloat(toFloat(x));
    if (typeof x === "boolean") return new StarFloat(x ? 1 : 0);
    if (typeof x === "string") {
      const t = x.trim().toLowerCase();
      if (/^[+-]?(inf|infinity)$/.test(t)) return new StarFloat(t.startsWith("-") ? -Infinity : Infinity);
      if (/^[+-]?nan$/.test(t)) return new StarFloat(NaN);
      if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) return new StarFloat(Number(t));
      throw runtimeError(`float: invalid float literal: ${repr(x)}`);
    }
    throw runtimeError(`float: got ${typeName(x)}, want number or string`);
  }],
  ["getattr", (th, args, kwargs) => {
    noKwargs("getattr", kwargs);
    const [x, nameV, dflt] = unpack("getattr", args, null, ["x", "name", "default?"]);
    const name = wantString("getattr", nameV, "name");
    if (!hasAttribute(x!, name)) {
      if (dflt !== undefined) return dflt;
    }
    return attribute(th, x!, name);
  }],
  ["hasattr", (_th, args, kwargs) => {
    const [x, nameV] = unpack("hasattr", args, kwargs, ["x", "name"]);
    return hasAttribute(x!, wantString("hasattr", nameV, "name"));
  }],
  ["int", (_th, args, kwargs) => {
    const [x, baseV] = unpack("int", args, kwargs, ["x?", "base?"]);
    if (x === undefined) return 0;
    if (typeof x === "string") {
      const base = baseV === undefined ? 10 : wantInt("int", baseV, "base");
      try {
        return parseIntString(x, base);
      } catch {
        throw runtimeError(`int: invalid literal with base ${base}: ${repr(x)}`);
      }
    }
    if (baseV !== undefined) throw runtimeError("int: can't convert non-string with explicit base");
    if (typeof x === "number" || typeof x === "bigint") return x;
    if (typeof x === "boolean") return x ? 1 : 0;
    if (x instanceof StarFloat) {
      if (!Number.isFinite(x.v)) throw runtimeError(`int: cannot convert ${str(x)} to int`);
      const t = Math.trunc(x.v);
      return Number.isSafeInteger(t) ? (t === 0 ? 0 : t) : normInt(BigInt(t));
    }
    throw runtimeError(`int: got ${typeName(x)}, want int, float, bool or string`);
  }],
  ["len", (_th, args, kwargs) => {
    const [x] = unpack("len", args, kwargs, ["x"]);
    const n = len(x!);
    if (n === undefined) throw runtimeError(`len: value of type ${typeName(x!)} has no len`);
    return n;
  }],
  ["list", (th, args, kwargs) => {
    const [x] = unpack("list", args, kwargs, ["x?"]);
    if (x === undefined) return new StarList([]);
    const elems = toArray(th, x, "list");
    th.alloc(elems.length * 8);
    return new StarList(elems);
  }],
  ["max", (th, args, kwargs) => minMax(th, args, kwargs, "max", 1)],
  ["min", (th, args, kwargs) => minMax(th, args, kwargs, "min", -1)],
  ["print", (th, args, kwargs) => {
    th.print(joinArgs(args, kwargs, "print"));
    return null;
  }],
  ["range", (_th, args, kwargs) => {
    noKwargs("range", kwargs);
    if (args.length === 0 || args.length > 3) throw runtimeError(`range: got ${args.length} arguments, want 1 to 3`);
    const n = args.map((a, i) => wantInt("range", a, `argument ${i + 1}`));
    const [start, stop, step] = n.length === 1 ? [0, n[0], 1] : [n[0], n[1], n[2] ?? 1];
    if (step === 0) throw runtimeError("range: step argument must not be zero");
    return new StarRange(start, stop, step);
  }],
  ["repr", (_th, args, kwargs) => repr(unpack("repr", args, kwargs, ["x"])[0]!)],
  ["reversed", (th, args, kwargs) => {
    const [x] = unpack("reversed", args, kwargs, ["x"]);
    return new StarList(toArray(th, x!, "reversed").reverse());
  }],
  ["sorted", (th, args, kwargs) => {
    const [x, key, reverse] = unpack("sorted", args, kwargs, ["x", "key?", "reverse?"]);
    const elems = toArray(th, x!, "sorted");
    th.alloc(elems.length * 16);
    const keys = key === undefined || key === null ? elems : elems.map((e) => th.call(key, [e], null));
    const idx = elems.map((_, i) => i);
    const rev = reverse !== undefined && truth(reverse);
    // Array.prototype.sort is stable; reverse=True keeps equal elements in order too.
    idx.sort((a, b) => {
      th.step();
      const c = compare(keys[a], keys[b]);
      return rev ? -c : c;
    });
    return new StarList(idx.map((i) => elems[i]));
  }],
  ["str", (th, args, kwargs) => {
    const s = str(unpack("str", args, kwargs, ["x"])[0]!);
    th.alloc(s.length * 2);
    return s;
  }],
  ["tuple", (th, args, kwargs) => {
    const [x] = unpack("tuple", args, kwargs, ["x?"]);
    if (x === undefined) return new StarTuple([]);
    if (x instanceof StarTuple) return x;
    return new StarTuple(toArray(th, x, "tuple"));
  }],
  ["type", (_th, args, kwargs) => typeName(unpack("type", args, kwargs, ["x"])[0]!)],
  ["zip", (th, args, kwargs) => {
    noKwargs("zip", kwargs);
    const lists = args.map((a) => toArray(th, a, "zip"));
    const n = lists.length === 0 ? 0 : Math.min(...lists.map((l) => l.length));
    th.alloc(n * (16 + 8 * lists.length));
    const out: Value[] = [];
    for (let i = 0; i < n; i++) out.push(new StarTuple(lists.map((l) => l[i])));
    return new StarList(out);
  }],
];

export const UNIVERSE: ReadonlyMap<string, Value> = new Map(universe.map(([name, impl]) => [name, new Builtin(name, impl)]));

export { iterableElems };
