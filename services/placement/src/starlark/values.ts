// Starlark values. Representation, chosen for speed of the common case:
//   None -> null, bool -> boolean, string -> JS string,
//   int -> number when it is a safe integer, bigint beyond (Starlark ints are unbounded),
//   float -> StarFloat (boxed, so 1 and 1.0 stay distinct types),
//   list / tuple / dict / range / struct / functions -> the classes below.
// Nothing here ever looks a user-supplied name up on a JS object: attributes and
// methods live in Maps, so no script can reach a prototype.
import type { FunctionInfo } from "./ast.ts";
import { runtimeError } from "./errors.ts";

export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | StarFloat
  | StarList
  | StarTuple
  | StarDict
  | StarRange
  | StarStruct
  | StarFunction
  | Builtin;

export type Kwargs = [string, Value][] | null;

/** What builtins may use of the running interpreter. */
export interface Thread {
  call(fn: Value, args: Value[], kwargs: Kwargs): Value;
  /** Count a unit of work against the step budget. */
  step(n?: number): void;
  /** Account for a value being built (estimated bytes) against the memory bound. */
  alloc(bytes: number): void;
  print(message: string): void;
}

export class StarFloat {
  constructor(readonly v: number) {}
}

/** Lists and dicts refuse mutation when frozen, or while a loop iterates over them. */
abstract class Mutable {
  frozen = false;
  iterating = 0;
  checkMutable(verb: string): void {
    if (this.frozen) throw runtimeError(`cannot ${verb} frozen ${this.typeName}`);
    if (this.iterating > 0) throw runtimeError(`cannot ${verb} ${this.typeName} during iteration`);
  }
  abstract get typeName(): string;
}

export class StarList extends Mutable {
  constructor(public elems: Value[]) {
    super();
  }
  get typeName(): string {
    return "list";
  }
}

export class StarTuple {
  constructor(readonly elems: readonly Value[]) {}
}

/** Dict entries keyed by a normalised hash key; insertion order is kept by Map. */
export class StarDict extends Mutable {
  readonly map = new Map<unknown, [Value, Value]>();
  get typeName(): string {
    return "dict";
  }
  get(key: Value): Value | undefined {
    return this.map.get(hashKey(key))?.[1];
  }
  set(key: Value, value: Value): void {
    const k = hashKey(key);
    const e = this.map.get(k);
    if (e) e[1] = value;
    else this.map.set(k, [key, value]);
  }
  has(key: Value): boolean {
    return this.map.has(hashKey(key));
  }
  delete(key: Value): Value | undefined {
    const k = hashKey(key);
    const e = this.map.get(k);
    if (!e) return undefined;
    this.map.delete(k);
    return e[1];
  }
  get size(): number {
    return this.map.size;
  }
}

export class StarRange {
  constructor(readonly start: number, readonly stop: number, readonly step: number) {}
  get length(): number {
    if (this.step > 0) return this.stop > this.start ? Math.floor((this.stop - this.start - 1) / this.step) + 1 : 0;
    return this.start > this.stop ? Math.floor((this.start - this.stop - 1) / -this.step) + 1 : 0;
  }
  at(i: number): number {
    return this.start + i * this.step;
  }
}

/**
 * An immutable record with named fields: how LXD exposes API objects to scripts.
 * Host data may back a struct lazily: a field is converted when first read, since
 * a scriptlet reads a few fields of each of many candidates.
 */
export class StarStruct {
  private readonly known: Map<string, Value>;
  private complete: boolean;

  constructor(
    fields: ReadonlyMap<string, Value>,
    readonly typeLabel = "struct",
    private readonly lazy?: { names: readonly string[]; convert(name: string): Value | undefined },
  ) {
    this.known = new Map(fields);
    this.complete = lazy === undefined;
  }

  get(name: string): Value | undefined {
    const v = this.known.get(name);
    if (v !== undefined || this.complete) return v;
    const c = this.lazy!.convert(name);
    if (c !== undefined) this.known.set(name, c);
    return c;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Every field, converting the rest of a lazy struct (for repr, ==, dir). */
  get fields(): ReadonlyMap<string, Value> {
    if (!this.complete) {
      const all = new Map<string, Value>();
      for (const n of this.lazy!.names) {
        const v = this.get(n);
        if (v !== undefined) all.set(n, v);
      }
      this.known.clear();
      for (const [k, v] of all) this.known.set(k, v);
      this.complete = true;
    }
    return this.known;
  }

  /** Fields converted so far (a lazy struct's others are converted frozen when read). */
  knownValues(): IterableIterator<Value> {
    return this.known.values();
  }
}

export class StarFunction {
  constructor(
    readonly info: FunctionInfo,
    /** Defaults aligned with the named parameters; undefined marks a required one. */
    readonly defaults: (Value | undefined)[],
    /** Frame of the enclosing function (for free variables), null at module level. */
    readonly closure: Closure | null,
    readonly module: ModuleState,
  ) {}
  get name(): string {
    return this.info.name;
  }
}

export interface Closure {
  locals: (Value | undefined)[];
  parent: Closure | null;
}

export interface ModuleState {
  globals: (Value | undefined)[];
  globalNames: string[];
  predeclared: ReadonlyMap<string, Value>;
}

export type BuiltinImpl = (th: Thread, args: Value[], kwargs: Kwargs, self: Builtin) => Value;

export class Builtin {
  constructor(
    readonly name: string,
    readonly impl: BuiltinImpl,
    /** The receiver of a bound method such as `x.append`. */
    readonly recv: Value | undefined = undefined,
  ) {}
}

// ---- ints -------------------------------------------------------------------

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

/** Canonical int: a number when safe, else a bigint. */
export function normInt(v: bigint): number | bigint {
  return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

export function isInt(v: Value): v is number | bigint {
  return typeof v === "number" || typeof v === "bigint";
}

export function toBig(v: number | bigint): bigint {
  return typeof v === "bigint" ? v : BigInt(v);
}

// ---- type names and truth ----------------------------------------------------

export function typeName(v: Value): string {
  if (v === null) return "NoneType";
  switch (typeof v) {
    case "boolean":
      return "bool";
    case "number":
    case "bigint":
      return "int";
    case "string":
      return "string";
  }
  if (v instanceof StarFloat) return "float";
  if (v instanceof StarList) return "list";
  if (v instanceof StarTuple) return "tuple";
  if (v instanceof StarDict) return "dict";
  if (v instanceof StarRange) return "range";
  if (v instanceof StarStruct) return v.typeLabel;
  if (v instanceof StarFunction) return "function";
  return "builtin_function_or_method";
}

export function truth(v: Value): boolean {
  if (v === null) return false;
  switch (typeof v) {
    case "boolean":
      return v;
    case "number":
      return v !== 0;
    case "bigint":
      return v !== 0n;
    case "string":
      return v.length > 0;
  }
  if (v instanceof StarFloat) return v.v !== 0;
  if (v instanceof StarList || v instanceof StarTuple) return v.elems.length > 0;
  if (v instanceof StarDict) return v.size > 0;
  if (v instanceof StarRange) return v.length > 0;
  return true;
}

// ---- hashing -------------------------------------------------------------------

/**
 * The key a value has in a dict's Map. Equal Starlark values map to the same key:
 * 1 and 1.0 both become the number 1; strings stay strings (a JS string never
 * equals a number in a Map, so "1" and 1 stay apart); tuples become a tagged string.
 */
export function hashKey(v: Value): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string" || typeof v === "bigint") {
    return v;
  }
  if (v instanceof StarFloat) {
    const f = v.v;
    if (Number.isInteger(f)) return Number.isSafeInteger(f) ? f : BigInt(f);
    return f;
  }
  if (v instanceof StarTuple) return "\u0000t" + JSON.stringify(v.elems.map(tupleKeyPart));
  if (v instanceof StarRange || v instanceof StarStruct || v instanceof StarFunction || v instanceof Builtin) {
    return v; // identity hashing, as for functions in Starlark
  }
  throw runtimeError(`unhashable type: ${typeName(v)}`);
}

function tupleKeyPart(v: Value): unknown {
  const k = hashKey(v);
  switch (typeof k) {
    case "string":
      return "s" + k;
    case "number":
      return k;
    case "bigint":
      return "n" + k.toString();
    case "boolean":
      return k ? "T" : "F";
    case "object":
      return k === null ? "N" : "?";
    default:
      return "?";
  }
}

// ---- freezing --------------------------------------------------------------------

/** Deep-freeze a value graph (after module load, and for host-supplied data). */
export function freeze(v: Value): void {
  const stack: Value[] = [v];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (x === null || typeof x !== "object" || seen.has(x)) continue;
    seen.add(x);
    if (x instanceof StarList) {
      x.frozen = true;
      for (const e of x.elems) stack.push(e);
    } else if (x instanceof StarTuple) {
      for (const e of x.elems) stack.push(e);
    } else if (x instanceof StarDict) {
      x.frozen = true;
      for (const [k, val] of x.map.values()) stack.push(k, val);
    } else if (x instanceof StarStruct) {
      for (const f of x.knownValues()) stack.push(f);
    } else if (x instanceof StarFunction) {
      for (const d of x.defaults) if (d !== undefined) stack.push(d);
      for (let c = x.closure; c; c = c.parent) for (const l of c.locals) if (l !== undefined) stack.push(l);
    } else if (x instanceof Builtin && x.recv !== undefined) {
      stack.push(x.recv);
    }
  }
}

// ---- iteration ---------------------------------------------------------------------

/**
 * Elements of an iterable value, as an array snapshot or a range. Strings are not
 * iterable in Starlark (use s.elems()).
 */
export function iterableElems(v: Value, what = "for loop"): readonly Value[] | StarRange {
  if (v instanceof StarList || v instanceof StarTuple) return v.elems;
  if (v instanceof StarDict) return [...v.map.values()].map((e) => e[0]);
  if (v instanceof StarRange) return v;
  if (typeof v === "string") {
    throw runtimeError(`${what}: string is not iterable (use .elems() for its characters)`);
  }
  throw runtimeError(`${what}: ${typeName(v)} is not iterable`);
}

/** Materialise any iterable into an array (for list(), sorted(), ...). */
export function toArray(th: Thread, v: Value, what: string): Value[] {
  const it = iterableElems(v, what);
  if (it instanceof StarRange) {
    const n = it.length;
    th.alloc(n * 8);
    const out: Value[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = it.at(i);
    return out;
  }
  return it.slice();
}

export function len(v: Value): number | undefined {
  if (typeof v === "string") return v.length;
  if (v instanceof StarList || v instanceof StarTuple) return v.elems.length;
  if (v instanceof StarDict) return v.size;
  if (v instanceof StarRange) return v.length;
  return undefined;
}
