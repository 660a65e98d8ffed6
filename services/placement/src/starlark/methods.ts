// Methods of lists and dicts, and attribute lookup for every type. Lookups go
// through Maps keyed by the method name, never through JS property access.
import { unpack, wantInt } from "./args.ts";
import { equals } from "./compare.ts";
import { runtimeError } from "./errors.ts";
import { repr } from "./repr.ts";
import { stringMethods, type MethodImpl } from "./string-methods.ts";
import {
  Builtin, StarDict, StarList, StarRange, StarStruct, StarTuple, iterableElems, typeName,
  type Thread, type Value,
} from "./values.ts";

function elemsOf(v: Value, what: string): Value[] {
  const it = iterableElems(v, what);
  if (it instanceof StarRange) return Array.from({ length: it.length }, (_, i) => it.at(i));
  return it as Value[];
}

function noArgs(fname: string, args: Value[]): void {
  if (args.length > 0) throw runtimeError(`${fname}: got ${args.length} arguments, want 0`);
}

const listMethods = new Map<string, MethodImpl>([
  ["append", (th, l, args, kwargs) => {
    const [x] = unpack("append", args, kwargs, ["x"]);
    const list = l as StarList;
    list.checkMutable("append to");
    th.alloc(8);
    list.elems.push(x!);
    return null;
  }],
  ["clear", (_th, l, args) => {
    noArgs("clear", args);
    const list = l as StarList;
    list.checkMutable("clear");
    list.elems.length = 0;
    return null;
  }],
  ["extend", (th, l, args, kwargs) => {
    const [x] = unpack("extend", args, kwargs, ["iterable"]);
    const list = l as StarList;
    list.checkMutable("extend");
    const more = elemsOf(x!, "extend").slice();
    th.alloc(more.length * 8);
    for (const e of more) list.elems.push(e);
    return null;
  }],
  ["index", (_th, l, args, kwargs) => {
    const [x, start, end] = unpack("index", args, kwargs, ["x", "start?", "end?"]);
    const elems = (l as StarList).elems;
    const n = elems.length;
    const norm = (v: Value | undefined, d: number) => {
      if (v === undefined || v === null) return d;
      const i = wantInt("index", v, "bound");
      return i < 0 ? Math.max(0, i + n) : Math.min(i, n);
    };
    for (let i = norm(start, 0); i < norm(end, n); i++) if (equals(elems[i], x!)) return i;
    throw runtimeError(`index: value ${repr(x!)} not in list`);
  }],
  ["insert", (th, l, args, kwargs) => {
    const [iV, x] = unpack("insert", args, kwargs, ["index", "x"]);
    const list = l as StarList;
    list.checkMutable("insert into");
    const n = list.elems.length;
    let i = wantInt("insert", iV, "index");
    if (i < 0) i = Math.max(0, i + n);
    if (i > n) i = n;
    th.alloc(8);
    list.elems.splice(i, 0, x!);
    return null;
  }],
  ["pop", (_th, l, args, kwargs) => {
    const [iV] = unpack("pop", args, kwargs, ["index?"]);
    const list = l as StarList;
    list.checkMutable("pop from");
    const n = list.elems.length;
    let i = iV === undefined ? n - 1 : wantInt("pop", iV, "index");
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw runtimeError(`pop: index ${iV === undefined ? -1 : repr(iV)} out of range (list has length ${n})`);
    return list.elems.splice(i, 1)[0];
  }],
  ["remove", (_th, l, args, kwargs) => {
    const [x] = unpack("remove", args, kwargs, ["x"]);
    const list = l as StarList;
    list.checkMutable("remove from");
    const i = list.elems.findIndex((e) => equals(e, x!));
    if (i < 0) throw runtimeError(`remove: element ${repr(x!)} not found`);
    list.elems.splice(i, 1);
    return null;
  }],
]);

const dictMethods = new Map<string, MethodImpl>([
  ["clear", (_th, d, args) => {
    noArgs("clear", args);
    const dict = d as StarDict;
    dict.checkMutable("clear");
    dict.map.clear();
    return null;
  }],
  ["get", (_th, d, args, kwargs) => {
    const [k, dflt] = unpack("get", args, kwargs, ["key", "default?"]);
    const v = (d as StarDict).get(k!);
    return v === undefined ? (dflt ?? null) : v;
  }],
  ["items", (th, d, args) => {
    noArgs("items", args);
    const dict = d as StarDict;
    th.alloc(dict.size * 40);
    return new StarList([...dict.map.values()].map(([k, v]) => new StarTuple([k, v])));
  }],
  ["keys", (th, d, args) => {
    noArgs("keys", args);
    const dict = d as StarDict;
    th.alloc(dict.size * 8);
    return new StarList([...dict.map.values()].map((e) => e[0]));
  }],
  ["pop", (_th, d, args, kwargs) => {
    const [k, dflt] = unpack("pop", args, kwargs, ["key", "default?"]);
    const dict = d as StarDict;
    dict.checkMutable("delete from");
    const v = dict.delete(k!);
    if (v !== undefined) return v;
    if (dflt !== undefined) return dflt;
    throw runtimeError(`pop: key ${repr(k!)} not in dict`);
  }],
  ["popitem", (_th, d, args) => {
    noArgs("popitem", args);
    const dict = d as StarDict;
    dict.checkMutable("delete from");
    const first = dict.map.entries().next();
    if (first.done) throw runtimeError("popitem: empty dict");
    dict.map.delete(first.value[0]);
    return new StarTuple(first.value[1]);
  }],
  ["setdefault", (th, d, args, kwargs) => {
    const [k, dflt] = unpack("setdefault", args, kwargs, ["key", "default?"]);
    const dict = d as StarDict;
    const v = dict.get(k!);
    if (v !== undefined) return v;
    dict.checkMutable("insert into");
    th.alloc(16);
    dict.set(k!, dflt ?? null);
    return dflt ?? null;
  }],
  ["update", (th, d, args, kwargs) => {
    if (args.length > 1) throw runtimeError(`update: got ${args.length} arguments, want at most 1`);
    const dict = d as StarDict;
    dict.checkMutable("insert into");
    if (args.length === 1) updatePairs(th, dict, args[0], "update");
    for (const [k, v] of kwargs ?? []) {
      th.alloc(16);
      dict.set(k, v);
    }
    return null;
  }],
  ["values", (th, d, args) => {
    noArgs("values", args);
    const dict = d as StarDict;
    th.alloc(dict.size * 8);
    return new StarList([...dict.map.values()].map((e) => e[1]));
  }],
]);

/** Insert the pairs of a dict or of an iterable of 2-element sequences. */
export function updatePairs(th: Thread, dict: StarDict, src: Value, fname: string): void {
  if (src instanceof StarDict) {
    th.alloc(src.size * 16);
    for (const [k, v] of [...src.map.values()]) dict.set(k, v);
    return;
  }
  const elems = elemsOf(src, fname);
  elems.forEach((pair, i) => {
    const kv = pair instanceof StarList || pair instanceof StarTuple ? pair.elems : null;
    if (!kv || kv.length !== 2) {
      throw runtimeError(`${fname}: element #${i} is not a pair (${typeName(pair)} of length ${kv?.length ?? "?"})`);
    }
    th.alloc(16);
    dict.set(kv[0], kv[1]);
  });
}

function methodsOf(recv: Value): Map<string, MethodImpl> | undefined {
  if (typeof recv === "string") return stringMethods;
  if (recv instanceof StarList) return listMethods;
  if (recv instanceof StarDict) return dictMethods;
  return undefined;
}

export function lookupMethod(recv: Value, name: string): MethodImpl | undefined {
  return methodsOf(recv)?.get(name);
}

/** Field and method names of a value, sorted (what dir() shows). */
export function attributeNames(v: Value): string[] {
  const names = v instanceof StarStruct ? [...v.fields.keys()] : [...(methodsOf(v)?.keys() ?? [])];
  return names.sort();
}

export function hasAttribute(v: Value, name: string): boolean {
  if (v instanceof StarStruct) return v.has(name);
  return methodsOf(v)?.has(name) ?? false;
}

/** x.name: a struct field, or a method bound to x. */
export function attribute(_th: Thread, v: Value, name: string): Value {
  if (v instanceof StarStruct) {
    const f = v.get(name);
    if (f !== undefined) return f;
    throw runtimeError(`${v.typeLabel} has no .${name} field`);
  }
  const m = methodsOf(v)?.get(name);
  if (m === undefined) throw runtimeError(`${typeName(v)} has no .${name} field or method`);
  return new Builtin(name, (th, args, kwargs, self) => m(th, self.recv as Value, args, kwargs), v);
}
