// Host data (JSON-shaped) to frozen Starlark values, the way LXD marshals API
// structs: objects become structs (request.name, member.server_name), while the
// fields that are maps in LXD's API (config, devices, storage_pools, ...) become
// dicts (request.config["limits.memory"]). Only own enumerable properties are read.
import { runtimeError } from "../starlark/errors.ts";
import {
  StarDict, StarFloat, StarList, StarStruct, freeze, normInt, type Value,
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
  if (Array.isArray(v)) return new StarList(v.map((e) => convert(e, "struct", depth + 1, label)));
  if (!isPlainObject(v)) throw runtimeError(`host value of unsupported type ${typeof v} (${label})`);
  if (kind === "struct") {
    const fields = new Map<string, Value>();
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (x === undefined || typeof x === "function") continue;
      fields.set(k, convert(x, MAP_FIELDS.get(k) ?? "struct", depth + 1, k));
    }
    return new StarStruct(fields);
  }
  const d = new StarDict();
  const inner: MapKind | "struct" = kind === "dict-of-dict" ? "dict" : "struct";
  for (const k of Object.keys(v)) {
    const x = v[k];
    if (x === undefined || typeof x === "function") continue;
    d.set(k, kind === "dict" && scalar(x) !== undefined ? scalar(x)! : convert(x, inner, depth + 1, k));
  }
  return d;
}

/** Convert host data to a deeply frozen Starlark value; objects become structs. */
export function toStarlark(v: unknown, label = "value"): Value {
  const out = convert(v, "struct", 0, label);
  freeze(out);
  return out;
}

/** A struct from explicit fields (each converted as toStarlark would). */
export function structOf(fields: Record<string, unknown>, label = "value"): StarStruct {
  return toStarlark(fields, label) as StarStruct;
}
