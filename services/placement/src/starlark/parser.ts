// Recursive-descent parser for the Starlark grammar (bazelbuild/starlark spec.md),
// written from the spec's grammar. Deep nesting is refused with a clear error long
// before the JS stack could overflow.
import type {
  Argument, BinaryOp, CompClause, Expr, FunctionInfo, Module, NameExpr, Param, Stmt,
} from "./ast.ts";
import { syntaxError, type Position } from "./errors.ts";
import { tokenize, type Token } from "./lexer.ts";
import { StarFloat } from "./values.ts";

export interface ParseOptions {
  /** `while` is not Starlark; a host may enable it explicitly. */
  allowWhile?: boolean;
  /** Deepest nesting of brackets, blocks and unary operators accepted. */
  maxNesting?: number;
  maxSourceLength?: number;
}

const COMPARISON = new Set(["==", "!=", "<", ">", "<=", ">="]);
const AUGMENTED = new Map<string, BinaryOp>([
  ["+=", "+"], ["-=", "-"], ["*=", "*"], ["/=", "/"], ["//=", "//"], ["%=", "%"],
  ["&=", "&"], ["|=", "|"], ["^=", "^"], ["<<=", "<<"], [">>=", ">>"],
]);
// Binary operator levels, loosest first; comparisons and boolean operators are
// handled separately.
const LEVELS: string[][] = [["|"], ["^"], ["&"], ["<<", ">>"], ["+", "-"], ["*", "/", "//", "%"]];
// A left-deep chain longer than this would make evaluation recurse too deeply.
const MAX_CHAIN = 1000;

export function parse(src: string, opts: ParseOptions = {}): Module {
  const toks = tokenize(src, { maxSourceLength: opts.maxSourceLength });
  return new Parser(toks, opts).parseModule();
}

class Parser {
  private p = 0;
  private depth = 0;
  private readonly maxNesting: number;

  constructor(private readonly toks: Token[], private readonly opts: ParseOptions) {
    this.maxNesting = opts.maxNesting ?? 100;
  }

  // ---- token helpers ---------------------------------------------------------

  private get tok(): Token {
    return this.toks[this.p];
  }
  private peekKind(): Token["kind"] {
    return this.toks[this.p].kind;
  }
  private next(): Token {
    return this.toks[this.p++];
  }
  private isOp(text: string): boolean {
    const t = this.tok;
    return t.kind === "op" && t.text === text;
  }
  private isKw(text: string): boolean {
    const t = this.tok;
    return t.kind === "keyword" && t.text === text;
  }
  private eatOp(text: string): boolean {
    if (this.isOp(text)) {
      this.p++;
      return true;
    }
    return false;
  }
  private expectOp(text: string, context?: string): Token {
    if (!this.isOp(text)) throw this.unexpected(context ? `expected '${text}' ${context}` : `expected '${text}'`);
    return this.next();
  }
  private expectKw(text: string): Token {
    if (!this.isKw(text)) throw this.unexpected(`expected '${text}'`);
    return this.next();
  }
  private expectName(): Token {
    if (this.tok.kind !== "name") throw this.unexpected("expected a name");
    return this.next();
  }
  private unexpected(want: string) {
    const t = this.tok;
    const got =
      t.kind === "eof" ? "end of file" :
      t.kind === "newline" ? "newline" :
      t.kind === "indent" ? "indentation" :
      t.kind === "dedent" ? "end of block" :
      t.kind === "string" ? "string literal" :
      `'${t.text}'`;
    if (t.kind === "indent") return syntaxError("unexpected indentation", t);
    return syntaxError(`got ${got}, ${want}`, t);
  }
  private enter(at: Position): void {
    if (++this.depth > this.maxNesting) {
      throw syntaxError(`nesting too deep (limit ${this.maxNesting})`, at);
    }
  }
  private leave(): void {
    this.depth--;
  }

  // ---- statements ------------------------------------------------------------

  parseModule(): Module {
    const body: Stmt[] = [];
    while (this.tok.kind !== "eof") {
      if (this.tok.kind === "newline") {
        this.p++;
        continue;
      }
      body.push(...this.parseStatement());
    }
    return { body, globalNames: [], numModuleLocals: 0 };
  }

  private parseStatement(): Stmt[] {
    const t = this.tok;
    if (t.kind === "indent") throw syntaxError("unexpected indentation", t);
    if (t.kind === "keyword") {
      switch (t.text) {
        case "def":
          return [this.parseDef()];
        case "if":
          return [this.parseIf()];
        case "for":
          return [this.parseFor()];
        case "while":
          if (!this.opts.allowWhile) throw syntaxError("while loops are not allowed in Starlark; use for over a range", t);
          return [this.parseWhile()];
      }
    }
    return this.parseSimpleLine();
  }

  private parseBlock(): Stmt[] {
    this.expectOp(":");
    if (this.tok.kind !== "newline") return this.parseSimpleLine();
    this.p++;
    if (this.peekKind() !== "indent") throw this.unexpected("expected an indented block");
    const at = this.next();
    this.enter(at);
    const body: Stmt[] = [];
    while (this.peekKind() !== "dedent" && this.peekKind() !== "eof") {
      if (this.peekKind() === "newline") {
        this.p++;
        continue;
      }
      body.push(...this.parseStatement());
    }
    if (this.peekKind() === "dedent") this.p++;
    this.leave();
    return body;
  }

  private parseDef(): Stmt {
    const kw = this.next();
    const nameTok = this.expectName();
    this.expectOp("(");
    const params = this.parseParams(")");
    this.expectOp(")");
    const fn = this.makeFunction(nameTok.text, params, [], kw);
    fn.body = this.parseBlock();
    const target: NameExpr = { kind: "name", name: nameTok.text, line: nameTok.line, column: nameTok.column };
    return { kind: "def", fn, target, line: kw.line, column: kw.column };
  }

  private makeFunction(name: string, params: Param[], body: Stmt[], at: Position): FunctionInfo {
    let numPositional = 0;
    let numKwonly = 0;
    let hasVarargs = false;
    let hasKwargs = false;
    let seenStar = false;
    for (const prm of params) {
      if (prm.kind === "plain") {
        if (seenStar) numKwonly++;
        else numPositional++;
      } else if (prm.kind === "star") {
        seenStar = true;
        if (prm.name !== undefined) hasVarargs = true;
      } else {
        hasKwargs = true;
      }
    }
    return {
      name, params, body, numPositional, numKwonly, hasVarargs, hasKwargs,
      numLocals: 0, localNames: [], line: at.line, column: at.column,
    };
  }

  private parseParams(end: string): Param[] {
    const params: Param[] = [];
    const seen = new Set<string>();
    let seenDefault = false;
    let seenStar = false;
    let seenKwargs = false;
    while (!this.isOp(end)) {
      const t = this.tok;
      if (seenKwargs) throw syntaxError("parameters may not follow **kwargs", t);
      let prm: Param;
      if (this.eatOp("**")) {
        const n = this.expectName();
        prm = { kind: "starstar", name: n.text, line: n.line, column: n.column };
        seenKwargs = true;
      } else if (this.eatOp("*")) {
        if (seenStar) throw syntaxError("multiple * parameters not allowed", t);
        seenStar = true;
        const n = this.tok.kind === "name" ? this.next() : undefined;
        prm = { kind: "star", name: n?.text, line: t.line, column: t.column };
      } else {
        const n = this.expectName();
        prm = { kind: "plain", name: n.text, line: n.line, column: n.column };
        if (this.eatOp("=")) {
          prm.default = this.parseTest();
          seenDefault = true;
        } else if (seenDefault && !seenStar) {
          throw syntaxError(`required parameter ${n.text} may not follow an optional one`, n);
        }
      }
      if (prm.name !== undefined) {
        if (seen.has(prm.name)) throw syntaxError(`duplicate parameter: ${prm.name}`, prm);
        seen.add(prm.name);
      }
      params.push(prm);
      if (!this.eatOp(",")) break;
    }
    const last = params[params.length - 1];
    if (last && last.kind === "star" && last.name === undefined) {
      throw syntaxError("bare * must be followed by keyword-only parameters", last);
    }
    return params;
  }

  private parseIf(): Stmt {
    const kw = this.next(); // 'if' or 'elif'
    const cond = this.parseTest();
    const then = this.parseBlock();
    let els: Stmt[] = [];
    if (this.isKw("elif")) {
      els = [this.parseIf()];
    } else if (this.isKw("else")) {
      this.p++;
      els = this.parseBlock();
    }
    return { kind: "if", cond, then, else: els, line: kw.line, column: kw.column };
  }

  private parseFor(): Stmt {
    const kw = this.next();
    const vars = this.parseLoopVars();
    this.expectKw("in");
    const iter = this.parseExpression();
    const body = this.parseBlock();
    return { kind: "for", vars, iter, body, line: kw.line, column: kw.column };
  }

  private parseWhile(): Stmt {
    const kw = this.next();
    const cond = this.parseTest();
    const body = this.parseBlock();
    return { kind: "while", cond, body, line: kw.line, column: kw.column };
  }

  private parseLoopVars(): Expr {
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
  private parseSimpleLine(): Stmt[] {
    const out: Stmt[] = [this.parseSmall()];
    while (this.eatOp(";")) {
      if (this.tok.kind === "newline" || this.tok.kind === "eof") break;
      out.push(this.parseSmall());
    }
    if (this.tok.kind === "newline") this.p++;
    else if (this.tok.kind !== "eof" && this.tok.kind !== "dedent") throw this.unexpected("expected end of statement");
    return out;
  }

  private parseSmall(): Stmt {
    const t = this.tok;
    if (t.kind === "keyword") {
      switch (t.text) {
        case "return": {
          this.p++;
          const end = this.tok.kind === "newline" || this.tok.kind === "eof" || this.isOp(";") || this.tok.kind === "dedent";
          return { kind: "return", value: end ? undefined : this.parseExpression(), line: t.line, column: t.column };
        }
        case "break":
        case "continue":
        case "pass":
          this.p++;
          return { kind: t.text, line: t.line, column: t.column };
        case "load":
          if (this.toks[this.p + 1].kind === "op" && this.toks[this.p + 1].text === "(") {
            throw syntaxError("load statements are not supported: a placement scriptlet is a single file", t);
          }
          throw syntaxError("load is a keyword and cannot be used as a name", t);
      }
    }
    const lhs = this.parseExpression();
    const op = this.tok;
    if (this.isOp("=")) {
      this.p++;
      this.checkTarget(lhs, "assignment");
      const value = this.parseExpression();
      if (this.isOp("=")) throw syntaxError("chained assignment (a = b = c) is not allowed", this.tok);
      // Errors of an assignment (frozen target, unpacking) point at its target.
      const at = startOf(lhs);
      return { kind: "assign", target: lhs, value, line: at.line, column: at.column };
    }
    const aug = op.kind === "op" ? AUGMENTED.get(op.text) : undefined;
    if (aug !== undefined) {
      this.p++;
      if (lhs.kind !== "name" && lhs.kind !== "index" && lhs.kind !== "dot") {
        throw syntaxError(`cannot use ${op.text} with ${describe(lhs)}`, lhs);
      }
      this.checkTarget(lhs, "assignment");
      const value = this.parseExpression();
      const at = startOf(lhs);
      return { kind: "augassign", op: aug, target: lhs, value, line: at.line, column: at.column };
    }
    return { kind: "expr", expr: lhs, line: t.line, column: t.column };
  }

  private checkTarget(e: Expr, what: string): void {
    switch (e.kind) {
      case "name":
      case "index":
      case "dot":
        return;
      case "tuple":
      case "list":
        for (const x of e.elems) this.checkTarget(x, what);
        return;
      default:
        throw syntaxError(`cannot assign to ${describe(e)} in ${what}`, e);
    }
  }

  // ---- expressions -----------------------------------------------------------

  /** Test {',' Test}: a bare comma list is a tuple. */
  private parseExpression(): Expr {
    const first = this.parseTest();
    if (!this.isOp(",")) return first;
    const elems = [first];
    while (this.eatOp(",")) {
      if (!this.startsExpr()) break;
      elems.push(this.parseTest());
    }
    return { kind: "tuple", elems, parenthesized: false, line: first.line, column: first.column };
  }

  private startsExpr(): boolean {
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

  private parseTest(): Expr {
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

  private parseLambda(): Expr {
    const kw = this.next();
    const params = this.parseParams(":");
    this.expectOp(":");
    const body = this.parseTest();
    const fn = this.makeFunction("lambda", params, [], kw);
    fn.body = [{ kind: "return", value: body, line: body.line, column: body.column }];
    return { kind: "lambda", fn, line: kw.line, column: kw.column };
  }

  private parseOr(): Expr {
    let x = this.parseAnd();
    let n = 0;
    while (this.isKw("or")) {
      const op = this.next();
      if (++n > MAX_CHAIN) throw syntaxError("expression too long", op);
      x = { kind: "logical", op: "or", left: x, right: this.parseAnd(), line: op.line, column: op.column };
    }
    return x;
  }

  private parseAnd(): Expr {
    let x = this.parseNot();
    let n = 0;
    while (this.isKw("and")) {
      const op = this.next();
      if (++n > MAX_CHAIN) throw syntaxError("expression too long", op);
      x = { kind: "logical", op: "and", left: x, right: this.parseNot(), line: op.line, column: op.column };
    }
    return x;
  }

  private parseNot(): Expr {
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

  private comparisonOp(): string | undefined {
    const t = this.tok;
    if (t.kind === "op" && COMPARISON.has(t.text)) return t.text;
    if (t.kind === "keyword") {
      if (t.text === "in") return "in";
      if (t.text === "not" && this.toks[this.p + 1].kind === "keyword" && this.toks[this.p + 1].text === "in") return "not in";
    }
    return undefined;
  }

  private parseComparison(): Expr {
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

  private parseBinary(level: number): Expr {
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

  private parseUnary(): Expr {
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

  private parsePrimary(): Expr {
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

  private parseSubscript(object: Expr, at: Token): Expr {
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

  private parseArgs(): Argument[] {
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

  private parseOperand(): Expr {
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

  private parseParen(): Expr {
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

  private parseListOrComp(): Expr {
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

  private parseDictOrComp(): Expr {
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

  private parseClauses(): CompClause[] {
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

/** Where an expression's text starts (an index or call node sits at its bracket). */
function startOf(e: Expr): Position {
  switch (e.kind) {
    case "index":
    case "slice":
    case "dot":
      return startOf(e.object);
    case "call":
      return startOf(e.fn);
    case "binary":
    case "logical":
      return startOf(e.left);
    case "cond":
      return startOf(e.then);
    case "tuple":
      return e.parenthesized || e.elems.length === 0 ? e : startOf(e.elems[0]);
    default:
      return e;
  }
}

function describe(e: Expr): string {
  switch (e.kind) {
    case "literal":
      return "a literal";
    case "call":
      return "a function call";
    case "binary":
    case "unary":
    case "logical":
      return "an operator expression";
    case "comp":
      return "a comprehension";
    case "cond":
      return "a conditional expression";
    case "lambda":
      return "a lambda";
    case "slice":
      return "a slice";
    case "dict":
      return "a dict literal";
    case "list":
      return "a list";
    case "tuple":
      return "a tuple";
    default:
      return "this expression";
  }
}
