// Static name resolution, as the Starlark spec requires: every name is local,
// free (from an enclosing function), global or predeclared, decided before running.
// A misspelt name is therefore refused when the scriptlet is set, not when it first
// runs, and the evaluator reads variables from arrays by index instead of by name.
import type { CompClause, Expr, FunctionInfo, Module, NameExpr, Stmt } from "./ast.ts";
import { StarlarkError } from "./errors.ts";

interface Scope {
  parent: Scope | null;
  /** null for the module's top level. */
  fn: FunctionInfo | null;
  locals: Map<string, number>;
  /** Comprehension variables in scope, innermost last. */
  layers: Map<string, number>[];
  numLocals: number;
  localNames: string[];
}

export function resolveModule(mod: Module, isPredeclared: (name: string) => boolean): void {
  const globals = new Map<string, number>();
  // Globals are every name bound at top level, so functions may use a global
  // assigned further down the file.
  for (const s of mod.body) collectBound(s, (n) => {
    if (!globals.has(n)) globals.set(n, globals.size);
  });
  const moduleScope: Scope = { parent: null, fn: null, locals: new Map(), layers: [], numLocals: 0, localNames: [] };
  const r = new Resolver(globals, isPredeclared);
  r.block(mod.body, moduleScope, 0);
  mod.globalNames = [...globals.keys()];
  mod.numModuleLocals = moduleScope.numLocals;
}

/** Names a statement binds in its own block (not inside nested functions or comprehensions). */
function collectBound(s: Stmt, add: (name: string) => void): void {
  switch (s.kind) {
    case "assign":
    case "augassign":
      targetNames(s.target, add);
      return;
    case "for":
      targetNames(s.vars, add);
      for (const b of s.body) collectBound(b, add);
      return;
    case "while":
      for (const b of s.body) collectBound(b, add);
      return;
    case "if":
      for (const b of s.then) collectBound(b, add);
      for (const b of s.else) collectBound(b, add);
      return;
    case "def":
      add(s.target.name);
      return;
  }
}

function targetNames(e: Expr, add: (name: string) => void): void {
  if (e.kind === "name") add(e.name);
  else if (e.kind === "tuple" || e.kind === "list") for (const x of e.elems) targetNames(x, add);
}

class Resolver {
  constructor(
    private readonly globals: Map<string, number>,
    private readonly isPredeclared: (name: string) => boolean,
  ) {}

  block(stmts: Stmt[], sc: Scope, loops: number): void {
    for (const s of stmts) this.stmt(s, sc, loops);
  }

  private stmt(s: Stmt, sc: Scope, loops: number): void {
    switch (s.kind) {
      case "expr":
        this.expr(s.expr, sc);
        return;
      case "assign":
        this.expr(s.value, sc);
        this.expr(s.target, sc);
        return;
      case "augassign":
        this.expr(s.target, sc);
        this.expr(s.value, sc);
        return;
      case "if":
        this.expr(s.cond, sc);
        this.block(s.then, sc, loops);
        this.block(s.else, sc, loops);
        return;
      case "for":
        this.expr(s.iter, sc);
        this.expr(s.vars, sc);
        this.block(s.body, sc, loops + 1);
        return;
      case "while":
        this.expr(s.cond, sc);
        this.block(s.body, sc, loops + 1);
        return;
      case "def":
        this.function(s.fn, sc);
        this.expr(s.target, sc);
        return;
      case "return":
        if (sc.fn === null) throw new StarlarkError("resolve", "return statement not within a function", s);
        if (s.value) this.expr(s.value, sc);
        return;
      case "break":
      case "continue":
        if (loops === 0) throw new StarlarkError("resolve", `${s.kind} not in a loop`, s);
        return;
      case "pass":
        return;
    }
  }

  private function(fn: FunctionInfo, parent: Scope): void {
    // Defaults are evaluated where the def is, in the enclosing scope.
    for (const p of fn.params) if (p.default) this.expr(p.default, parent);
    const sc: Scope = { parent, fn, locals: new Map(), layers: [], numLocals: 0, localNames: [] };
    const addLocal = (n: string) => {
      if (!sc.locals.has(n)) {
        sc.locals.set(n, sc.numLocals++);
        sc.localNames.push(n);
      }
    };
    // Parameter slots first, in the order the call binder fills them.
    const plain = fn.params.filter((p) => p.kind === "plain");
    for (const p of plain) addLocal(p.name!);
    const star = fn.params.find((p) => p.kind === "star" && p.name !== undefined);
    if (star) addLocal(star.name!);
    const kw = fn.params.find((p) => p.kind === "starstar");
    if (kw) addLocal(kw.name!);
    for (const s of fn.body) collectBound(s, addLocal);
    this.block(fn.body, sc, 0);
    fn.numLocals = sc.numLocals;
    fn.localNames = sc.localNames;
  }

  private comprehension(clauses: CompClause[], body: Expr[], sc: Scope): void {
    const layer = new Map<string, number>();
    // The first iterable is evaluated in the enclosing scope.
    const first = clauses[0];
    if (first.kind === "for") this.expr(first.iter, sc);
    sc.layers.push(layer);
    for (let i = 0; i < clauses.length; i++) {
      const c = clauses[i];
      if (c.kind === "for") {
        if (i > 0) this.expr(c.iter, sc);
        targetNames(c.vars, (n) => {
          const slot = sc.numLocals++;
          sc.localNames.push(n);
          layer.set(n, slot);
        });
        this.expr(c.vars, sc);
      } else {
        this.expr(c.cond, sc);
      }
    }
    for (const b of body) this.expr(b, sc);
    sc.layers.pop();
  }

  private expr(e: Expr, sc: Scope): void {
    switch (e.kind) {
      case "name":
        this.name(e, sc);
        return;
      case "literal":
        return;
      case "list":
      case "tuple":
        for (const x of e.elems) this.expr(x, sc);
        return;
      case "dict":
        for (const { key, value } of e.entries) {
          this.expr(key, sc);
          this.expr(value, sc);
        }
        return;
      case "comp":
        this.comprehension(e.clauses, e.value ? [e.body, e.value] : [e.body], sc);
        return;
      case "unary":
        this.expr(e.operand, sc);
        return;
      case "binary":
      case "logical":
        this.expr(e.left, sc);
        this.expr(e.right, sc);
        return;
      case "cond":
        this.expr(e.cond, sc);
        this.expr(e.then, sc);
        this.expr(e.else, sc);
        return;
      case "index":
        this.expr(e.object, sc);
        this.expr(e.index, sc);
        return;
      case "slice":
        this.expr(e.object, sc);
        if (e.start) this.expr(e.start, sc);
        if (e.stop) this.expr(e.stop, sc);
        if (e.step) this.expr(e.step, sc);
        return;
      case "dot":
        this.expr(e.object, sc);
        return;
      case "call":
        this.expr(e.fn, sc);
        for (const a of e.args) this.expr(a.value, sc);
        return;
      case "lambda":
        this.function(e.fn, sc);
        return;
    }
  }

  private name(e: NameExpr, sc: Scope): void {
    const n = e.name;
    let depth = 0;
    for (let s: Scope | null = sc; s; s = s.parent, depth++) {
      for (let i = s.layers.length - 1; i >= 0; i--) {
        const slot = s.layers[i].get(n);
        if (slot !== undefined) {
          e.binding = depth === 0 ? { scope: "local", index: slot } : { scope: "free", depth, index: slot };
          return;
        }
      }
      if (s.fn !== null) {
        const slot = s.locals.get(n);
        if (slot !== undefined) {
          e.binding = depth === 0 ? { scope: "local", index: slot } : { scope: "free", depth, index: slot };
          return;
        }
      }
    }
    const g = this.globals.get(n);
    if (g !== undefined) {
      e.binding = { scope: "global", index: g };
      return;
    }
    if (this.isPredeclared(n)) {
      e.binding = { scope: "predeclared" };
      return;
    }
    throw new StarlarkError("resolve", `undefined: ${n}`, e);
  }
}
