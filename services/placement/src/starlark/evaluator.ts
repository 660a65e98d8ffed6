// Tree-walking evaluator. Variables were resolved to slots before running, every
// node evaluated counts against the step budget, and any error leaves with the
// line and column of the innermost node that raised it.
import type { Expr, FunctionInfo, Module, Stmt } from "./ast.ts";
import { acceptsPositional, bindArgs, defaultSlots } from "./call.ts";
import { limitError, runtimeError, toStarlarkError, type Position } from "./errors.ts";
import { attribute, lookupMethod } from "./methods.ts";
import { binary, index, setIndex, slice, unary } from "./operators.ts";
import { repr } from "./repr.ts";
import { Budget, type Limits } from "./sandbox.ts";
import {
  Builtin, StarDict, StarFunction, StarList, StarRange, StarTuple, freeze, iterableElems, truth,
  typeName, type Closure, type Kwargs, type ModuleState, type Thread, type Value,
} from "./values.ts";

interface Frame extends Closure {
  module: ModuleState;
  ret: Value;
}

const NORMAL = 0;
const BREAK = 1;
const CONTINUE = 2;
const RETURN = 3;
type Signal = 0 | 1 | 2 | 3;

export class Interpreter implements Thread {
  readonly budget: Budget;
  private readonly active = new Set<FunctionInfo>();
  private depth = 0;

  constructor(limits: Limits = {}, private readonly printSink: (message: string) => void = () => {}, clock?: () => number) {
    this.budget = new Budget(limits, clock);
  }

  step(n = 1): void {
    this.budget.step(n);
  }
  alloc(bytes: number): void {
    this.budget.alloc(bytes);
  }
  print(message: string): void {
    this.printSink(message);
  }

  /** Run a module's top level, then freeze every global it defined. */
  execModule(mod: Module, predeclared: ReadonlyMap<string, Value>): ModuleState {
    const state: ModuleState = { globals: new Array(mod.globalNames.length), globalNames: mod.globalNames, predeclared };
    const frame: Frame = { locals: new Array(mod.numModuleLocals), parent: null, module: state, ret: null };
    this.guard(() => this.execBlock(mod.body, frame), { line: 1, column: 1 });
    for (const g of state.globals) if (g !== undefined) freeze(g);
    return state;
  }

  /** Call a Starlark or builtin function from the host. */
  callFunction(fn: Value, args: Value[], kwargs: Kwargs = null): Value {
    return this.guard(() => this.call(fn, args, kwargs), undefined);
  }

  private guard<T>(run: () => T, pos: Position | undefined): T {
    try {
      return run();
    } catch (err) {
      throw toStarlarkError(err, pos);
    }
  }

  call(fn: Value, args: Value[], kwargs: Kwargs): Value {
    if (fn instanceof Builtin) return fn.impl(this, args, kwargs, fn);
    if (!(fn instanceof StarFunction)) throw runtimeError(`invalid call of non-function (${typeName(fn)})`);
    const info = fn.info;
    if (this.active.has(info)) throw runtimeError(`function ${fn.name} called recursively`);
    if (this.depth >= this.budget.maxCallDepth) throw limitError(`call depth exceeds ${this.budget.maxCallDepth}`);
    const locals = bindArgs(fn, args, kwargs);
    const frame: Frame = { locals, parent: fn.closure, module: fn.module, ret: null };
    this.active.add(info);
    this.depth++;
    try {
      this.execBlock(info.body, frame);
    } finally {
      this.active.delete(info);
      this.depth--;
    }
    return frame.ret;
  }

  // ---- statements ----------------------------------------------------------

  private execBlock(stmts: Stmt[], f: Frame): Signal {
    for (let i = 0; i < stmts.length; i++) {
      const sig = this.exec(stmts[i], f);
      if (sig !== NORMAL) return sig;
    }
    return NORMAL;
  }

  private exec(s: Stmt, f: Frame): Signal {
    this.budget.step();
    try {
      switch (s.kind) {
        case "expr":
          this.eval(s.expr, f);
          return NORMAL;
        case "assign":
          this.assign(s.target, this.eval(s.value, f), f);
          return NORMAL;
        case "augassign":
          this.augAssign(s, f);
          return NORMAL;
        case "if":
          return truth(this.eval(s.cond, f)) ? this.execBlock(s.then, f) : this.execBlock(s.else, f);
        case "for":
          return this.execFor(s.vars, this.eval(s.iter, f), s.body, f);
        case "while":
          while (truth(this.eval(s.cond, f))) {
            this.budget.step();
            const sig = this.execBlock(s.body, f);
            if (sig === BREAK) break;
            if (sig === RETURN) return sig;
          }
          return NORMAL;
        case "def":
          this.assign(s.target, this.makeFunction(s.fn, f), f);
          return NORMAL;
        case "return":
          f.ret = s.value ? this.eval(s.value, f) : null;
          return RETURN;
        case "break":
          return BREAK;
        case "continue":
          return CONTINUE;
        case "pass":
          return NORMAL;
      }
    } catch (err) {
      throw toStarlarkError(err, s);
    }
  }

  private execFor(vars: Expr, iterable: Value, body: Stmt[], f: Frame): Signal {
    const it = iterableElems(iterable);
    if (it instanceof StarRange) {
      const n = it.length;
      for (let i = 0; i < n; i++) {
        this.budget.step();
        this.assign(vars, it.at(i), f);
        const sig = this.execBlock(body, f);
        if (sig === BREAK) break;
        if (sig === RETURN) return sig;
      }
      return NORMAL;
    }
    // Lists and dicts may not change while a loop walks them (Starlark rule).
    const owner = iterable instanceof StarList || iterable instanceof StarDict ? iterable : null;
    if (owner) owner.iterating++;
    try {
      for (let i = 0; i < it.length; i++) {
        this.budget.step();
        this.assign(vars, it[i], f);
        const sig = this.execBlock(body, f);
        if (sig === BREAK) break;
        if (sig === RETURN) return sig;
      }
    } finally {
      if (owner) owner.iterating--;
    }
    return NORMAL;
  }

  private makeFunction(info: FunctionInfo, f: Frame): StarFunction {
    const defaults = defaultSlots(info, (e) => this.eval(e, f));
    // Functions defined at top level close over the module frame (comprehension
    // variables there); nested ones over the enclosing call's frame.
    return new StarFunction(info, defaults, f, f.module);
  }

  private assign(target: Expr, v: Value, f: Frame): void {
    switch (target.kind) {
      case "name": {
        const b = target.binding!;
        if (b.scope === "local") f.locals[b.index] = v;
        else if (b.scope === "global") f.module.globals[b.index] = v;
        else throw runtimeError(`cannot assign to ${target.name}`);
        return;
      }
      case "index":
        setIndex(this, this.eval(target.object, f), this.eval(target.index, f), v);
        return;
      case "dot":
        throw runtimeError(`cannot assign to field .${target.name}: ${typeName(this.eval(target.object, f))} is immutable`);
      case "tuple":
      case "list": {
        const it = iterableElems(v, "unpacking");
        const n = it instanceof StarRange ? it.length : it.length;
        const want = target.elems.length;
        if (n !== want) {
          throw runtimeError(n > want ? `too many values to unpack (got ${n}, want ${want})` : `not enough values to unpack (got ${n}, want ${want})`);
        }
        for (let i = 0; i < want; i++) this.assign(target.elems[i], it instanceof StarRange ? it.at(i) : it[i], f);
        return;
      }
      default:
        throw runtimeError("invalid assignment target");
    }
  }

  private augAssign(s: Extract<Stmt, { kind: "augassign" }>, f: Frame): void {
    const t = s.target;
    if (t.kind === "index") {
      const obj = this.eval(t.object, f);
      const key = this.eval(t.index, f);
      const cur = index(obj, key);
      setIndex(this, obj, key, this.augValue(s.op, cur, this.eval(s.value, f)));
      return;
    }
    const cur = this.eval(t, f);
    const rhs = this.eval(s.value, f);
    if (s.op === "+" && cur instanceof StarList) {
      // list += iterable extends the list in place, as the spec says.
      cur.checkMutable("append to");
      const more = iterableElems(rhs, "+=");
      const add = more instanceof StarRange ? Array.from({ length: more.length }, (_, i) => more.at(i)) : more;
      this.alloc(add.length * 8);
      for (const x of add) cur.elems.push(x);
      return;
    }
    this.assign(t, this.augValue(s.op, cur, rhs), f);
  }

  private augValue(op: Extract<Stmt, { kind: "augassign" }>["op"], cur: Value, rhs: Value): Value {
    return binary(this, op, cur, rhs);
  }

  // ---- expressions ---------------------------------------------------------

  eval(e: Expr, f: Frame): Value {
    this.budget.step();
    try {
      switch (e.kind) {
        case "literal":
          return e.value as Value;
        case "name":
          return this.lookup(e.name, e.binding!, f);
        case "binary": {
          const x = this.eval(e.left, f);
          const y = this.eval(e.right, f);
          return binary(this, e.op, x, y);
        }
        case "logical": {
          const x = this.eval(e.left, f);
          if (e.op === "and") return truth(x) ? this.eval(e.right, f) : x;
          return truth(x) ? x : this.eval(e.right, f);
        }
        case "unary":
          return unary(e.op, this.eval(e.operand, f));
        case "cond":
          return truth(this.eval(e.cond, f)) ? this.eval(e.then, f) : this.eval(e.else, f);
        case "call":
          return this.evalCall(e, f);
        case "dot":
          return attribute(this, this.eval(e.object, f), e.name);
        case "index":
          return index(this.eval(e.object, f), this.eval(e.index, f));
        case "slice": {
          const obj = this.eval(e.object, f);
          const start = e.start ? this.eval(e.start, f) : null;
          const stop = e.stop ? this.eval(e.stop, f) : null;
          const step = e.step ? this.eval(e.step, f) : null;
          return slice(this, obj, start, stop, step);
        }
        case "list": {
          this.alloc(16 + e.elems.length * 8);
          const out: Value[] = new Array(e.elems.length);
          for (let i = 0; i < out.length; i++) out[i] = this.eval(e.elems[i], f);
          return new StarList(out);
        }
        case "tuple": {
          this.alloc(16 + e.elems.length * 8);
          const out: Value[] = new Array(e.elems.length);
          for (let i = 0; i < out.length; i++) out[i] = this.eval(e.elems[i], f);
          return new StarTuple(out);
        }
        case "dict": {
          this.alloc(16 + e.entries.length * 16);
          const d = new StarDict();
          for (const { key, value } of e.entries) {
            const k = this.eval(key, f);
            if (d.has(k)) throw runtimeError(`duplicate key ${repr(k)} in dict literal`);
            d.set(k, this.eval(value, f));
          }
          return d;
        }
        case "comp":
          return this.evalComp(e, f);
        case "lambda":
          return this.makeFunction(e.fn, f);
      }
    } catch (err) {
      throw toStarlarkError(err, e);
    }
  }

  private lookup(name: string, b: NonNullable<Extract<Expr, { kind: "name" }>["binding"]>, f: Frame): Value {
    let v: Value | undefined;
    switch (b.scope) {
      case "local":
        v = f.locals[b.index];
        if (v === undefined) throw runtimeError(`local variable ${name} referenced before assignment`);
        return v;
      case "free": {
        let c: Closure | null = f;
        for (let d = 0; d < b.depth && c; d++) c = c.parent;
        v = c?.locals[b.index];
        if (v === undefined) throw runtimeError(`local variable ${name} referenced before assignment`);
        return v;
      }
      case "global":
        v = f.module.globals[b.index];
        if (v === undefined) throw runtimeError(`global variable ${name} referenced before assignment`);
        return v;
      case "predeclared":
        v = f.module.predeclared.get(name);
        if (v === undefined) throw runtimeError(`undefined: ${name}`);
        return v;
    }
  }

  private evalCall(e: Extract<Expr, { kind: "call" }>, f: Frame): Value {
    // x.method(...) calls the method directly, without building a bound method value.
    let recv: Value | undefined;
    let method: ReturnType<typeof lookupMethod>;
    let fn: Value = null;
    if (e.fn.kind === "dot") {
      recv = this.eval(e.fn.object, f);
      method = lookupMethod(recv, e.fn.name);
      if (method === undefined) fn = attribute(this, recv, e.fn.name);
    } else {
      fn = this.eval(e.fn, f);
    }
    const args: Value[] = [];
    let kwargs: Kwargs = null;
    for (const a of e.args) {
      const v = this.eval(a.value, f);
      switch (a.kind) {
        case "pos":
          args.push(v);
          break;
        case "named":
          (kwargs ??= []).push([a.name!, v]);
          break;
        case "star": {
          const it = iterableElems(v, "argument after *");
          if (it instanceof StarRange) for (let i = 0; i < it.length; i++) args.push(it.at(i));
          else for (const x of it) args.push(x);
          break;
        }
        case "starstar":
          if (!(v instanceof StarDict)) throw runtimeError(`argument after ** must be a dict, not ${typeName(v)}`);
          for (const [k, val] of v.map.values()) {
            if (typeof k !== "string") throw runtimeError(`keywords must be strings, not ${typeName(k)}`);
            if (kwargs?.some(([n]) => n === k)) throw runtimeError(`got multiple values for keyword argument ${k}`);
            (kwargs ??= []).push([k, val]);
          }
          break;
      }
    }
    if (method !== undefined) return method(this, recv as Value, args, kwargs);
    return this.call(fn, args, kwargs);
  }

  private evalComp(e: Extract<Expr, { kind: "comp" }>, f: Frame): Value {
    const list: Value[] | null = e.dict ? null : [];
    const dict = e.dict ? new StarDict() : null;
    const clauses = e.clauses;
    const run = (ci: number): void => {
      if (ci === clauses.length) {
        if (list) {
          this.alloc(8);
          list.push(this.eval(e.body, f));
        } else {
          this.alloc(16);
          const k = this.eval(e.body, f);
          dict!.set(k, this.eval(e.value!, f));
        }
        return;
      }
      const c = clauses[ci];
      if (c.kind === "if") {
        if (truth(this.eval(c.cond, f))) run(ci + 1);
        return;
      }
      const iterable = this.eval(c.iter, f);
      const it = iterableElems(iterable, "comprehension");
      if (it instanceof StarRange) {
        for (let i = 0; i < it.length; i++) {
          this.budget.step();
          this.assign(c.vars, it.at(i), f);
          run(ci + 1);
        }
        return;
      }
      const owner = iterable instanceof StarList || iterable instanceof StarDict ? iterable : null;
      if (owner) owner.iterating++;
      try {
        for (let i = 0; i < it.length; i++) {
          this.budget.step();
          this.assign(c.vars, it[i], f);
          run(ci + 1);
        }
      } finally {
        if (owner) owner.iterating--;
      }
    };
    run(0);
    return list ? new StarList(list) : dict!;
  }
}

export { acceptsPositional, toStarlarkError };
