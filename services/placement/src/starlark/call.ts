// Binding call arguments to a Starlark function's parameter slots.
import type { FunctionInfo } from "./ast.ts";
import { runtimeError } from "./errors.ts";
import { StarDict, StarFunction, StarTuple, type Kwargs, type Value } from "./values.ts";

interface Layout {
  /** Slot of each named (positional-or-keyword or keyword-only) parameter. */
  slots: Map<string, number>;
  names: string[];
  varargsSlot: number;
  kwargsSlot: number;
}

const layouts = new WeakMap<FunctionInfo, Layout>();

function layoutOf(info: FunctionInfo): Layout {
  let l = layouts.get(info);
  if (l) return l;
  const names = info.params.filter((p) => p.kind === "plain").map((p) => p.name!);
  const slots = new Map<string, number>();
  names.forEach((n, i) => slots.set(n, i));
  const named = names.length;
  l = {
    slots,
    names,
    varargsSlot: info.hasVarargs ? named : -1,
    kwargsSlot: info.hasKwargs ? named + (info.hasVarargs ? 1 : 0) : -1,
  };
  layouts.set(info, l);
  return l;
}

/** Defaults of the named parameters, aligned with their slots (undefined = required). */
export function defaultSlots(info: FunctionInfo, evalDefault: (e: NonNullable<FunctionInfo["params"][number]["default"]>) => Value): (Value | undefined)[] {
  return info.params.filter((p) => p.kind === "plain").map((p) => (p.default ? evalDefault(p.default) : undefined));
}

/** A fresh locals array for a call of fn with these arguments, or an error. */
export function bindArgs(fn: StarFunction, args: Value[], kwargs: Kwargs): (Value | undefined)[] {
  const info = fn.info;
  const l = layoutOf(info);
  const locals: (Value | undefined)[] = new Array(info.numLocals);
  const np = info.numPositional;
  const n = args.length;
  const fast = n <= np ? n : np;
  for (let i = 0; i < fast; i++) locals[i] = args[i];
  if (n > np) {
    if (l.varargsSlot < 0) {
      throw runtimeError(`function ${fn.name} accepts at most ${np} positional argument${np === 1 ? "" : "s"} (${n} given)`);
    }
    locals[l.varargsSlot] = new StarTuple(args.slice(np));
  } else if (l.varargsSlot >= 0) {
    locals[l.varargsSlot] = new StarTuple([]);
  }
  let extra: StarDict | undefined;
  if (l.kwargsSlot >= 0) {
    extra = new StarDict();
    locals[l.kwargsSlot] = extra;
  }
  if (kwargs !== null) {
    for (const [k, v] of kwargs) {
      const slot = l.slots.get(k);
      if (slot !== undefined) {
        if (locals[slot] !== undefined) throw runtimeError(`function ${fn.name} got multiple values for parameter ${k}`);
        locals[slot] = v;
      } else if (extra) {
        if (extra.has(k)) throw runtimeError(`function ${fn.name} got multiple values for parameter ${k}`);
        extra.set(k, v);
      } else {
        throw runtimeError(`function ${fn.name} got an unexpected keyword argument ${k}`);
      }
    }
  }
  const named = l.names.length;
  let missing: string[] | undefined;
  for (let i = 0; i < named; i++) {
    if (locals[i] === undefined) {
      const d = fn.defaults[i];
      if (d !== undefined) locals[i] = d;
      else (missing ??= []).push(l.names[i]);
    }
  }
  if (missing) {
    throw runtimeError(`function ${fn.name} missing ${missing.length} argument${missing.length === 1 ? "" : "s"} (${missing.join(", ")})`);
  }
  return locals;
}

/** Whether fn can be called with exactly `count` positional arguments and nothing else. */
export function acceptsPositional(fn: StarFunction, count: number): boolean {
  const info = fn.info;
  if (count > info.numPositional && !info.hasVarargs) return false;
  for (let i = count; i < info.numPositional + info.numKwonly; i++) if (fn.defaults[i] === undefined) return false;
  return true;
}
