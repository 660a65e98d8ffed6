// Host data (JSON-shaped) to frozen Starlark values, the way LXD marshals API
// structs: objects become structs (request.name, member.server_name), while the
// fields that are maps in LXD's API (config, devices, storage_pools, ...) become
// dicts (request.config["limits.memory"]). Only own enumerable properties are read.
import { runtimeError } from "../starlark/errors.ts";
import {
  StarDict, StarFloat, StarList, StarStruct, normInt, type Value,
} from "../starlark/values.ts";

/** How the values of a map-typed field are converted. */
type MapKind = "dict" | "dict-of-dict" | "dict-of-struct";

const MAP_FIELDS: ReadonlyMap<string, MapKind> = new Map<string, MapKind>([
  ["config", "dict"],
  ["expanded_config", "dict"],
  ["devices", "dict-of-dict"],
  ["expanded_devices", "dict-of-dict"],
  ["storage_pools", "dict-of-struct"],
  ["source", "dict"],
]);

const MAX_DEPTH = 32;
const hasOwn = Object.prototype.hasOwnProperty;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function scalar(v: unknown): Value | undefined {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "boolean":
    case "string":
      return v;
    case "number":
      if (Number.isSafeInteger(v)) return v;
      return Number.isInteger(v) ? normInt(BigInt(v)) : new StarFloat(v);
    case "bigint":
      return normInt(v);
  }
  return undefined;
}

function convert(v: unknown, kind: MapKind | "struct", depth: number, label: string): Value {
  if (depth > MAX_DEPTH) throw runtimeError(`host value nested too deeply (${label})`);
  const s = scalar(v);
  if (s !== undefined) return s;
  if (Array.isArray(v)) {
    const list = new StarList(v.map((e) => convert(e, "struct", depth + 1, label)));
    list.frozen = true; // built frozen: no second walk over the value
    return list;
  }
  if (!isPlainObject(v)) throw runtimeError(`host value of unsupported type ${typeof v} (${label})`);
  if (kind === "struct") {
    // Fields are converted on first read; the names are fixed now, so later
    // changes to the host object cannot add fields.
    const names = Object.keys(v);
    return new StarStruct(new Map(), "struct", {
      names,
      convert(name: string): Value | undefined {
        if (!hasOwn.call(v, name)) return undefined;
        const x = v[name];
        if (x === undefined || typeof x === "function") return undefined;
        return convert(x, MAP_FIELDS.get(name) ?? "struct", depth + 1, name);
      },
    });
  }
  const d = new StarDict();
  const inner: MapKind | "struct" = kind === "dict-of-dict" ? "dict" : "struct";
  for (const k of Object.keys(v)) {
    const x = v[k];
    if (x === undefined || typeof x === "function") continue;
    d.set(k, convert(x, inner, depth + 1, k));
  }
  d.frozen = true;
  return d;
}

/** Convert host data to a deeply frozen Starlark value; objects become structs. */
export function toStarlark(v: unknown, label = "value"): Value {
  return convert(v, "struct", 0, label);
}

/** A struct from explicit fields (each converted as toStarlark would). */
export function structOf(fields: Record<string, unknown>, label = "value"): StarStruct {
  return toStarlark(fields, label) as StarStruct;
}
