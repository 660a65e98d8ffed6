// Public face of the interpreter: compile once (parse + resolve), run many times.
import type { Module } from "./ast.ts";
import { UNIVERSE } from "./builtins.ts";
import { Interpreter } from "./evaluator.ts";
import { parse, type ParseOptions } from "./parser.ts";
import { resolveModule } from "./resolve.ts";
import type { Limits } from "./sandbox.ts";
import type { ModuleState, Value } from "./values.ts";

export { StarlarkError } from "./errors.ts";
export type { Limits } from "./sandbox.ts";
export { DEFAULT_LIMITS } from "./sandbox.ts";
export { UNIVERSE } from "./builtins.ts";
export { Interpreter } from "./evaluator.ts";
export { repr, str } from "./repr.ts";
export * from "./values.ts";

export interface CompileOptions extends ParseOptions {
  /** Names the host will supply at run time, besides the universe builtins. */
  predeclared?: Iterable<string>;
}

export interface Program {
  readonly module: Module;
  readonly predeclared: ReadonlySet<string>;
}

/** Parse and resolve; throws StarlarkError (syntax or undefined name) with a position. */
export function compile(source: string, opts: CompileOptions = {}): Program {
  const module = parse(source, opts);
  const predeclared = new Set(opts.predeclared ?? []);
  resolveModule(module, (n) => predeclared.has(n) || UNIVERSE.has(n));
  return { module, predeclared };
}

export interface RunOptions {
  limits?: Limits;
  print?: (message: string) => void;
  clock?: () => number;
}

export interface LoadedModule {
  readonly interpreter: Interpreter;
  readonly state: ModuleState;
  /** A global defined by the script's top level, or undefined. */
  global(name: string): Value | undefined;
}

/**
 * Execute a program's top level with the host's predeclared values. The same
 * interpreter (and so the same budget) should be used for the calls that follow.
 */
export function load(program: Program, host: ReadonlyMap<string, Value>, opts: RunOptions = {}): LoadedModule {
  const predeclared = new Map<string, Value>(UNIVERSE);
  for (const [k, v] of host) predeclared.set(k, v);
  const interpreter = new Interpreter(opts.limits, opts.print, opts.clock);
  const state = interpreter.execModule(program.module, predeclared);
  return {
    interpreter,
    state,
    global(name: string) {
      const i = state.globalNames.indexOf(name);
      return i < 0 ? undefined : state.globals[i];
    },
  };
}

/** Convenience for tests and tools: compile and run a whole program, collecting print output. */
export function runProgram(source: string, opts: CompileOptions & RunOptions & { host?: ReadonlyMap<string, Value> } = {}): {
  output: string[];
  module: LoadedModule;
} {
  const output: string[] = [];
  const host = opts.host ?? new Map();
  const program = compile(source, { ...opts, predeclared: [...(opts.predeclared ?? []), ...host.keys()] });
  const module = load(program, host, { ...opts, print: opts.print ?? ((m) => output.push(m)) });
  return { output, module };
}
export { compare, equals } from "./compare.ts";
