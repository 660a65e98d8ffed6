// Argument unpacking and type checks shared by builtins and methods.
import { runtimeError } from "./errors.ts";
import { StarTuple, isInt, typeName, type Kwargs, type Value } from "./values.ts";

/**
 * Match positional and keyword arguments to parameter names. Names ending in "?"
 * are optional; the result has undefined for an optional argument not given.
 */
export function unpack(fname: string, args: Value[], kwargs: Kwargs, params: string[]): (Value | undefined)[] {
  const n = params.length;
  if (args.length > n) {
    throw runtimeError(`${fname}: got ${args.length} arguments, want at most ${n}`);
  }
  // The common case, positional arguments only, allocates nothing but the result.
  const out: (Value | undefined)[] = args.length === n && kwargs === null ? args : new Array(n);
  if (out !== args) for (let i = 0; i < args.length; i++) out[i] = args[i];
  if (kwargs) {
    for (const [k, v] of kwargs) {
      const i = params.findIndex((p) => p === k || p === k + "?");
      if (i < 0) throw runtimeError(`${fname}: unexpected keyword argument ${k}`);
      if (out[i] !== undefined) throw runtimeError(`${fname}: got multiple values for parameter ${k}`);
      out[i] = v;
    }
  }
  for (let i = args.length; i < n; i++) {
    const p = params[i];
    if (out[i] === undefined && p.charCodeAt(p.length - 1) !== 63 /* ? */) {
      throw runtimeError(`${fname}: missing argument for ${p}`);
    }
  }
  return out;
}

export function noKwargs(fname: string, kwargs: Kwargs): void {
  if (kwargs && kwargs.length > 0) throw runtimeError(`${fname}: unexpected keyword argument ${kwargs[0][0]}`);
}

export function wantString(fname: string, v: Value | undefined, what: string): string {
  if (typeof v !== "string") throw runtimeError(`${fname}: for ${what}, got ${typeName(v ?? null)}, want string`);
  return v;
}

export function wantInt(fname: string, v: Value | undefined, what: string): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") throw runtimeError(`${fname}: ${what} out of range`);
  throw runtimeError(`${fname}: for ${what}, got ${typeName(v ?? null)}, want int`);
}

export function optInt(fname: string, v: Value | undefined, what: string): number | undefined {
  return v === undefined || v === null ? undefined : wantInt(fname, v, what);
}

/** A string, or a tuple of strings (as startswith/endswith accept). */
export function stringOrTuple(fname: string, v: Value | undefined, what: string): string[] {
  if (typeof v === "string") return [v];
  if (v instanceof StarTuple) return v.elems.map((e) => wantString(fname, e, `element of ${what}`));
  throw runtimeError(`${fname}: for ${what}, got ${typeName(v ?? null)}, want string or tuple`);
}

export { isInt };
