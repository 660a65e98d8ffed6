// LXD's instance placement scriptlet API on top of the interpreter:
//   def instance_placement(request, candidate_members):
//       ... set_target(candidate_members[0].server_name)
// Validation happens when `instances.placement.scriptlet` is set; a run returns the
// chosen member and what the script logged, or an error that names the line.
import { unpack, wantString } from "../starlark/args.ts";
import type { FunctionInfo } from "../starlark/ast.ts";
import { acceptsPositional } from "../starlark/call.ts";
import { StarlarkError, runtimeError } from "../starlark/errors.ts";
import { compile, load, type Program } from "../starlark/index.ts";
import { str } from "../starlark/repr.ts";
import type { Limits } from "../starlark/sandbox.ts";
import { Builtin, StarFunction, StarList, typeName, type BuiltinImpl, type Value } from "../starlark/values.ts";
import { toStarlark } from "./convert.ts";
import type {
  ClusterMemberCandidate, PlacementHostFunctions, PlacementRequest, PlacementResult, ScriptletLog,
  ScriptletLogLevel, ValidationResult,
} from "./types.ts";

export const ENTRY_POINT = "instance_placement";

/** Functions a placement scriptlet may call besides the universe builtins. */
export const SCRIPTLET_FUNCTIONS = [
  "set_target", "log_info", "log_warn", "log_error",
  "get_cluster_member_resources", "get_cluster_member_state", "get_instance_resources",
] as const;

/** Default limits for one placement decision (module load + the call). */
export const SCRIPTLET_LIMITS: Required<Limits> = {
  maxSteps: 1_000_000,
  maxMillis: 1_000,
  maxAllocBytes: 32 * 1024 * 1024,
  maxCallDepth: 64,
};

export interface CompiledScriptlet {
  readonly source: string;
  readonly program: Program;
}

/** Parse and resolve a scriptlet; throws StarlarkError. */
export function compileScriptlet(source: string): CompiledScriptlet {
  return { source, program: compile(source, { predeclared: SCRIPTLET_FUNCTIONS }) };
}

// Recently compiled sources: the gateway runs the same scriptlet for every decision.
const cache = new Map<string, CompiledScriptlet>();
const CACHE_SIZE = 8;

function compiled(source: string | CompiledScriptlet): CompiledScriptlet {
  if (typeof source !== "string") return source;
  const hit = cache.get(source);
  if (hit) {
    cache.delete(source);
    cache.set(source, hit);
    return hit;
  }
  const c = compileScriptlet(source);
  cache.set(source, c);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return c;
}

function entryPointProblem(fn: Value | undefined): { error: string; at?: FunctionInfo } | undefined {
  if (fn === undefined) {
    return { error: `scriptlet: no function ${ENTRY_POINT}(request, candidate_members) is defined` };
  }
  if (!(fn instanceof StarFunction)) {
    return { error: `scriptlet: ${ENTRY_POINT} must be a function, not ${typeName(fn)}` };
  }
  if (!acceptsPositional(fn, 2)) {
    const n = fn.info.numPositional;
    const e = new StarlarkError(
      "resolve",
      `${ENTRY_POINT} must take 2 arguments (request, candidate_members), not ${n}`,
      fn.info,
    );
    return { error: e.message, at: fn.info };
  }
  return undefined;
}

/**
 * Check a scriptlet when it is set: syntax, undefined names, and that the top level
 * runs and defines instance_placement(request, candidate_members). Host functions are
 * not called (the top level may not call them: they only work during placement).
 */
export function validateScriptlet(source: string, limits: Limits = {}): ValidationResult {
  try {
    const c = compiled(source);
    const mod = load(c.program, scriptletHost(newRunState([], {})), { limits: { ...SCRIPTLET_LIMITS, ...limits } });
    const problem = entryPointProblem(mod.global(ENTRY_POINT));
    if (problem) return { ok: false, error: problem.error, line: problem.at?.line, column: problem.at?.column };
    return { ok: true };
  } catch (err) {
    const e = asStarlarkError(err);
    return { ok: false, error: e.message, line: e.line, column: e.column };
  }
}

interface RunState {
  /** True while instance_placement runs; the module's top level sees no placement data. */
  inCall: boolean;
  candidates: ReadonlySet<string>;
  target?: string;
  logs: ScriptletLog[];
  host: PlacementHostFunctions;
  resources: Map<string, Value>;
  states: Map<string, Value>;
  instanceResources?: Value;
}

function newRunState(candidates: readonly ClusterMemberCandidate[], host: PlacementHostFunctions): RunState {
  return {
    inCall: false,
    candidates: new Set(candidates.map((c) => c.server_name)),
    logs: [],
    host,
    resources: new Map(),
    states: new Map(),
  };
}

/**
 * The scriptlet's predeclared functions. Logging works anywhere; set_target and the
 * data functions only while instance_placement runs (placement data exists only then).
 */
function scriptletHost(run: RunState): Map<string, Value> {
  const needRun = (fname: string): RunState => {
    if (!run.inCall) throw runtimeError(`${fname}: only available while ${ENTRY_POINT} runs`);
    return run;
  };
  const log = (level: ScriptletLogLevel): BuiltinImpl => (_th, args) => {
    // LXD joins the arguments without a separator; strings appear unquoted.
    run.logs.push({ level, message: args.map(str).join("") });
    return null;
  };
  const hostCall = <T>(fname: string, call: (() => T) | undefined): T => {
    if (!call) throw runtimeError(`${fname}: not available on this cluster`);
    try {
      return call();
    } catch (err) {
      if (err instanceof StarlarkError) throw err;
      throw runtimeError(`${fname}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const fns: [string, BuiltinImpl][] = [
    ["set_target", (_th, args, kwargs) => {
      const r = needRun("set_target");
      const name = wantString("set_target", unpack("set_target", args, kwargs, ["member_name"])[0], "member_name");
      if (!r.candidates.has(name)) {
        throw runtimeError(`set_target: invalid member name ${JSON.stringify(name)}: not one of the candidate members`);
      }
      r.target = name;
      return null;
    }],
    ["log_info", log("info")],
    ["log_warn", log("warn")],
    ["log_error", log("error")],
    ["get_cluster_member_resources", (_th, args, kwargs) => {
      const r = needRun("get_cluster_member_resources");
      const fname = "get_cluster_member_resources";
      const name = wantString(fname, unpack(fname, args, kwargs, ["member_name"])[0], "member_name");
      let v = r.resources.get(name);
      if (v === undefined) {
        const host = r.host;
        v = toStarlark(hostCall(fname, host.getClusterMemberResources && (() => host.getClusterMemberResources!(name))), "resources");
        r.resources.set(name, v);
      }
      return v;
    }],
    ["get_cluster_member_state", (_th, args, kwargs) => {
      const r = needRun("get_cluster_member_state");
      const fname = "get_cluster_member_state";
      const name = wantString(fname, unpack(fname, args, kwargs, ["member_name"])[0], "member_name");
      let v = r.states.get(name);
      if (v === undefined) {
        const host = r.host;
        v = toStarlark(hostCall(fname, host.getClusterMemberState && (() => host.getClusterMemberState!(name))), "state");
        r.states.set(name, v);
      }
      return v;
    }],
    ["get_instance_resources", (_th, args, kwargs) => {
      const r = needRun("get_instance_resources");
      unpack("get_instance_resources", args, kwargs, []);
      if (r.instanceResources === undefined) {
        const host = r.host;
        const get = host.getInstanceResources && (() => host.getInstanceResources!());
        r.instanceResources = toStarlark(hostCall("get_instance_resources", get), "instance resources");
      }
      return r.instanceResources;
    }],
  ];
  return new Map(fns.map(([n, impl]) => [n, new Builtin(n, impl)]));
}

/** The Starlark `request`: LXD's InstancesPost fields at top level, plus project, reason and target. */
export function requestValue(request: PlacementRequest): Value {
  const i = request.instance;
  return toStarlark({
    name: i.name,
    type: i.type,
    architecture: i.architecture ?? "",
    description: i.description ?? "",
    config: i.config,
    devices: i.devices,
    profiles: i.profiles ?? [],
    ephemeral: i.ephemeral ?? false,
    stateful: i.stateful ?? false,
    source: i.source ?? {},
    project: request.project,
    reason: request.reason,
    target: request.target ?? "",
  }, "request");
}

/**
 * Run a scriptlet for one placement decision. Never throws: every failure comes
 * back as `error`, with whatever the script logged before it failed.
 */
export function runPlacementScriptlet(
  source: string | CompiledScriptlet,
  request: PlacementRequest,
  candidates: readonly ClusterMemberCandidate[],
  hostFunctions: PlacementHostFunctions = {},
  limits: Limits = {},
): PlacementResult {
  const run = newRunState(candidates, hostFunctions);
  try {
    const c = compiled(source);
    const mod = load(c.program, scriptletHost(run), {
      limits: { ...SCRIPTLET_LIMITS, ...limits },
      print: (message) => run.logs.push({ level: "info", message }),
    });
    const fn = mod.global(ENTRY_POINT);
    const problem = entryPointProblem(fn);
    if (problem) return { logs: run.logs, error: problem.error };
    const members = new StarList(candidates.map((m) => toStarlark(m, "candidate member")));
    members.frozen = true;
    run.inCall = true;
    const rv = mod.interpreter.callFunction(fn!, [requestValue(request), members]);
    run.inCall = false;
    if (rv !== null) {
      return { logs: run.logs, error: `scriptlet: ${ENTRY_POINT} must return None, not ${typeName(rv)}` };
    }
    if (run.target === undefined) {
      return { logs: run.logs, error: `scriptlet: ${ENTRY_POINT} did not choose a member (call set_target with a candidate's server_name)` };
    }
    return { target: run.target, logs: run.logs };
  } catch (err) {
    return { logs: run.logs, error: asStarlarkError(err).message };
  }
}

function asStarlarkError(err: unknown): StarlarkError {
  if (err instanceof StarlarkError) return err;
  return new StarlarkError("runtime", `internal error: ${err instanceof Error ? err.message : String(err)}`);
}
