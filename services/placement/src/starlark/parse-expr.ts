// Expression parsing: the half of the Starlark grammar below the statements
// (parser.ts adds statements and layout).
import type { Argument, BinaryOp, CompClause, Expr } from "./ast.ts";
import { syntaxError } from "./errors.ts";
import type { Token } from "./lexer.ts";
import { ParserBase } from "./parse-base.ts";
import { StarFloat } from "./values.ts";

export type { ParseOptions } from "./parse-base.ts";
export { describe, startOf } from "./parse-base.ts";

const COMPARISON = new Set(["==", "!=", "<", ">", "<=", ">="]);
// Binary operator levels, loosest first; comparisons and boolean operators are
// handled separately.
const LEVELS: string[][] = [["|"], ["^"], ["&"], ["<<", ">>"], ["+", "-"], ["*", "/", "//", "%"]];
// A left-deep chain longer than this would make evaluation recurse too deeply.
const MAX_CHAIN = 1000;

export abstract class ExpressionParser extends ParserBase {
  protected parseLoopVars(): Expr {
    const first = this.tok;
    const elems: Expr[] = [this.parsePrimary()];
    let comma = false;
    while (this.eatOp(",")) {
      comma = true;
      if (this.isKw("in")) break;
      elems.push(this.parsePrimary());
    }
    const vars: Expr = comma ? { kind: "tuple", elems, parenthesized: false, line: first.line, column: first.column } : elems[0];
    this.checkTarget(vars, "for loop variable");
    return vars;
  }

  /** One line of small statements separated by ';'. */
  // ---- expressions -----------------------------------------------------------

  /** Test {',' Test}: a bare comma list is a tuple. */
  protected parseExpression(): Expr {
    const first = this.parseTest();
    if (!this.isOp(",")) return first;
    const elems = [first];
    while (this.eatOp(",")) {
      if (!this.startsExpr()) break;
      elems.push(this.parseTest());
    }
    return { kind: "tuple", elems, parenthesized: false, line: first.line, column: first.column };
  }

  protected startsExpr(): boolean {
    const t = this.tok;
    switch (t.kind) {
      case "name":
      case "int":
      case "float":
      case "string":
        return true;
      case "keyword":
        return ["None", "True", "False", "not", "lambda"].includes(t.text);
      case "op":
        return ["(", "[", "{", "-", "+", "~"].includes(t.text);
      default:
        return false;
    }
  }

  protected override parseTest(): Expr {
    const t = this.tok;
    this.enter(t);
    try {
      if (this.isKw("lambda")) return this.parseLambda();
      const x = this.parseOr();
      if (this.isKw("if")) {
        const kw = this.next();
        const cond = this.parseOr();
        if (!this.isKw("else")) throw this.unexpected("expected 'else' in conditional expression");
        this.p++;
        const els = this.parseTest();
        return { kind: "cond", cond, then: x, else: els, line: kw.line, column: kw.column };
      }
      return x;
    } finally {
      this.leave();
    }
  }

  protected parseLambda(): Expr {
    const kw = this.next();
    const params = this.parseParams(":");
    this.expectOp(":");
    const body = this.parseTest();
    const fn = this.makeFunction("lambda", params, [], kw);
    fn.body = [{ kind: "return", value: body, line: body.line, column: body.column }];
    return { kind: "lambda", fn, line: kw.line, column: kw.column };
  }

  protected parseOr(): Expr {
    let x = this.parseAnd();
    let n = 0;
    while (this.isKw("or")) {
      const op = this.next();
      if (++n > MAX_CHAIN) throw syntaxError("expression too long", op);
      x = { kind: "logical", op: "or", left: x, right: this.parseAnd(), line: op.line, column: op.column };
    }
    return x;
  }

  protected parseAnd(): Expr {
    let x = this.parseNot();
    let n = 0;
    while (this.isKw("and")) {
      const op = this.next();
      if (++n > MAX_CHAIN) throw syntaxError("expression too long", op);
      x = { kind: "logical", op: "and", left: x, right: this.parseNot(), line: op.line, column: op.column };
    }
    return x;
  }

  protected parseNot(): Expr {
    if (this.isKw("not")) {
      const op = this.next();
      this.enter(op);
      try {
        return { kind: "unary", op: "not", operand: this.parseNot(), line: op.line, column: op.column };
      } finally {
        this.leave();
      }
    }
    return this.parseComparison();
  }

  protected comparisonOp(): string | undefined {
    const t = this.tok;
    if (t.kind === "op" && COMPARISON.has(t.text)) return t.text;
    if (t.kind === "keyword") {
      if (t.text === "in") return "in";
      if (t.text === "not" && this.toks[this.p + 1].kind === "keyword" && this.toks[this.p + 1].text === "in") return "not in";
    }
    return undefined;
  }

  protected parseComparison(): Expr {
    const x = this.parseBinary(0);
    const op = this.comparisonOp();
    if (op === undefined) return x;
    const opTok = this.tok;
    this.p += op === "not in" ? 2 : 1;
    const y = this.parseBinary(0);
    const again = this.comparisonOp();
    if (again !== undefined) {
      // Starlark comparisons are non-associative: a < b < c is refused, not chained.
      throw syntaxError(`comparison operators cannot be chained ('${op}' then '${again}'); use 'and'`, this.tok);
    }
    return { kind: "binary", op: op as BinaryOp, left: x, right: y, line: opTok.line, column: opTok.column };
  }

  protected parseBinary(level: number): Expr {
    if (level === LEVELS.length) return this.parseUnary();
    let x = this.parseBinary(level + 1);
    const ops = LEVELS[level];
    let n = 0;
    for (;;) {
      const t = this.tok;
      if (t.kind !== "op" || !ops.includes(t.text)) return x;
      this.p++;
      if (++n > MAX_CHAIN) throw syntaxError("expression too long", t);
      const y = this.parseBinary(level + 1);
      x = { kind: "binary", op: t.text as BinaryOp, left: x, right: y, line: t.line, column: t.column };
    }
  }

  protected parseUnary(): Expr {
    const t = this.tok;
    if (t.kind === "op" && (t.text === "-" || t.text === "+" || t.text === "~")) {
      this.p++;
      this.enter(t);
      try {
        return { kind: "unary", op: t.text, operand: this.parseUnary(), line: t.line, column: t.column };
      } finally {
        this.leave();
      }
    }
    if (t.kind === "op" && t.text === "**") throw syntaxError("Starlark has no ** operator", t);
    return this.parsePrimary();
  }

  protected parsePrimary(): Expr {
    let x = this.parseOperand();
    let n = 0;
    for (;;) {
      const t = this.tok;
      if (t.kind !== "op") return x;
      if (++n > MAX_CHAIN) throw syntaxError("expression too long", t);
      if (t.text === ".") {
        this.p++;
        const name = this.expectName();
        x = { kind: "dot", object: x, name: name.text, line: name.line, column: name.column };
      } else if (t.text === "(") {
        this.p++;
        x = { kind: "call", fn: x, args: this.parseArgs(), line: t.line, column: t.column };
        this.expectOp(")", "to close the call");
      } else if (t.text === "[") {
        this.p++;
        x = this.parseSubscript(x, t);
        this.expectOp("]", "to close the index");
      } else {
        return x;
      }
    }
  }

  protected parseSubscript(object: Expr, at: Token): Expr {
    let start: Expr | undefined;
    if (!this.isOp(":")) {
      start = this.parseExpression();
      if (!this.isOp(":")) return { kind: "index", object, index: start, line: at.line, column: at.column };
    }
    this.expectOp(":");
    const stop = this.isOp(":") || this.isOp("]") ? undefined : this.parseTest();
    let step: Expr | undefined;
    if (this.eatOp(":") && !this.isOp("]")) step = this.parseTest();
    return { kind: "slice", object, start, stop, step, line: at.line, column: at.column };
  }

  protected parseArgs(): Argument[] {
    const args: Argument[] = [];
    let seenNamed = false;
    let seenStar = false;
    let seenStarStar = false;
    const names = new Set<string>();
    while (!this.isOp(")")) {
      const t = this.tok;
      let arg: Argument;
      if (this.eatOp("**")) {
        if (seenStarStar) throw syntaxError("multiple **kwargs not allowed", t);
        arg = { kind: "starstar", value: this.parseTest() };
        seenStarStar = true;
      } else if (this.eatOp("*")) {
        if (seenStar || seenStarStar) throw syntaxError("*args may not follow *args or **kwargs", t);
        arg = { kind: "star", value: this.parseTest() };
        seenStar = true;
      } else if (t.kind === "name" && this.toks[this.p + 1].kind === "op" && this.toks[this.p + 1].text === "=") {
        this.p += 2;
        if (seenStarStar) throw syntaxError("keyword argument may not follow **kwargs", t);
        if (names.has(t.text)) throw syntaxError(`keyword argument ${t.text} repeated`, t);
        names.add(t.text);
        arg = { kind: "named", name: t.text, value: this.parseTest() };
        seenNamed = true;
      } else {
        if (seenNamed || seenStar || seenStarStar) {
          throw syntaxError("positional argument may not follow named or * arguments", t);
        }
        arg = { kind: "pos", value: this.parseTest() };
      }
      args.push(arg);
      if (!this.eatOp(",")) break;
    }
    return args;
  }

  protected parseOperand(): Expr {
    const t = this.tok;
    switch (t.kind) {
      case "name":
        this.p++;
        return { kind: "name", name: t.text, line: t.line, column: t.column };
      case "int":
        this.p++;
        return { kind: "literal", value: t.int, line: t.line, column: t.column };
      case "float":
        this.p++;
        return { kind: "literal", value: new StarFloat(t.float!), line: t.line, column: t.column };
      case "string":
        this.p++;
        if (this.tok.kind === "string") {
          throw syntaxError("adjacent string literals are not concatenated in Starlark; use +", this.tok);
        }
        return { kind: "literal", value: t.text, line: t.line, column: t.column };
      case "keyword":
        if (t.text === "load") throw syntaxError("load is a keyword and cannot be used as a name", t);
        if (t.text === "None" || t.text === "True" || t.text === "False") {
          this.p++;
          const value = t.text === "None" ? null : t.text === "True";
          return { kind: "literal", value, line: t.line, column: t.column };
        }
        break;
      case "op":
        if (t.text === "(") return this.parseParen();
        if (t.text === "[") return this.parseListOrComp();
        if (t.text === "{") return this.parseDictOrComp();
        break;
    }
    throw this.unexpected("expected an expression");
  }

  protected parseParen(): Expr {
    const open = this.next();
    this.enter(open);
    try {
      if (this.eatOp(")")) return { kind: "tuple", elems: [], parenthesized: true, line: open.line, column: open.column };
      const first = this.parseTest();
      if (this.eatOp(")")) {
        // (x) is x; keep the position of the parenthesis for errors about it.
        return first;
      }
      if (this.isKw("for")) throw syntaxError("generator expressions are not supported; use a list comprehension", this.tok);
      const elems = [first];
      while (this.eatOp(",")) {
        if (this.isOp(")")) break;
        elems.push(this.parseTest());
      }
      this.expectOp(")", "to close the parenthesis");
      return { kind: "tuple", elems, parenthesized: true, line: open.line, column: open.column };
    } finally {
      this.leave();
    }
  }

  protected parseListOrComp(): Expr {
    const open = this.next();
    this.enter(open);
    try {
      if (this.eatOp("]")) return { kind: "list", elems: [], line: open.line, column: open.column };
      const first = this.parseTest();
      if (this.isKw("for")) {
        const clauses = this.parseClauses();
        this.expectOp("]", "to close the list comprehension");
        return { kind: "comp", dict: false, body: first, clauses, line: open.line, column: open.column };
      }
      const elems = [first];
      while (this.eatOp(",")) {
        if (this.isOp("]")) break;
        elems.push(this.parseTest());
      }
      this.expectOp("]", "to close the list");
      return { kind: "list", elems, line: open.line, column: open.column };
    } finally {
      this.leave();
    }
  }

  protected parseDictOrComp(): Expr {
    const open = this.next();
    this.enter(open);
    try {
      if (this.eatOp("}")) return { kind: "dict", entries: [], line: open.line, column: open.column };
      const key = this.parseTest();
      this.expectOp(":", "after a dict key (Starlark has no sets)");
      const value = this.parseTest();
      if (this.isKw("for")) {
        const clauses = this.parseClauses();
        this.expectOp("}", "to close the dict comprehension");
        return { kind: "comp", dict: true, body: key, value, clauses, line: open.line, column: open.column };
      }
      const entries = [{ key, value }];
      while (this.eatOp(",")) {
        if (this.isOp("}")) break;
        const k = this.parseTest();
        this.expectOp(":", "after a dict key");
        entries.push({ key: k, value: this.parseTest() });
      }
      this.expectOp("}", "to close the dict");
      return { kind: "dict", entries, line: open.line, column: open.column };
    } finally {
      this.leave();
    }
  }

  protected parseClauses(): CompClause[] {
    const clauses: CompClause[] = [];
    for (;;) {
      const t = this.tok;
      if (this.isKw("for")) {
        this.p++;
        const vars = this.parseLoopVars();
        this.expectKw("in");
        clauses.push({ kind: "for", vars, iter: this.parseOr(), line: t.line, column: t.column });
      } else if (this.isKw("if")) {
        this.p++;
        clauses.push({ kind: "if", cond: this.parseOr(), line: t.line, column: t.column });
      } else {
        return clauses;
      }
    }
  }
}
