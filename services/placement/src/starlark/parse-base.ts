// What both halves of the parser share: the token cursor, error helpers, the
// nesting guard, function signatures (def and lambda) and assignment targets.
import type { Expr, FunctionInfo, Param, Stmt } from "./ast.ts";
import { syntaxError, type Position } from "./errors.ts";
import type { Token } from "./lexer.ts";

export interface ParseOptions {
  /** `while` is not Starlark; a host may enable it explicitly. */
  allowWhile?: boolean;
  /** Deepest nesting of brackets, blocks and unary operators accepted. */
  maxNesting?: number;
  maxSourceLength?: number;
}

export abstract class ParserBase {
  protected p = 0;
  protected depth = 0;
  protected readonly maxNesting: number;

  constructor(protected readonly toks: Token[], protected readonly opts: ParseOptions) {
    this.maxNesting = opts.maxNesting ?? 100;
  }

  // ---- token helpers ---------------------------------------------------------

  protected get tok(): Token {
    return this.toks[this.p];
  }
  protected peekKind(): Token["kind"] {
    return this.toks[this.p].kind;
  }
  protected next(): Token {
    return this.toks[this.p++];
  }
  protected isOp(text: string): boolean {
    const t = this.tok;
    return t.kind === "op" && t.text === text;
  }
  protected isKw(text: string): boolean {
    const t = this.tok;
    return t.kind === "keyword" && t.text === text;
  }
  protected eatOp(text: string): boolean {
    if (this.isOp(text)) {
      this.p++;
      return true;
    }
    return false;
  }
  protected expectOp(text: string, context?: string): Token {
    if (!this.isOp(text)) throw this.unexpected(context ? `expected '${text}' ${context}` : `expected '${text}'`);
    return this.next();
  }
  protected expectKw(text: string): Token {
    if (!this.isKw(text)) throw this.unexpected(`expected '${text}'`);
    return this.next();
  }
  protected expectName(): Token {
    if (this.tok.kind !== "name") throw this.unexpected("expected a name");
    return this.next();
  }
  protected unexpected(want: string) {
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
  protected enter(at: Position): void {
    if (++this.depth > this.maxNesting) {
      throw syntaxError(`nesting too deep (limit ${this.maxNesting})`, at);
    }
  }
  protected leave(): void {
    this.depth--;
  }

  // ---- function signatures and targets -------------------------------------

  protected makeFunction(name: string, params: Param[], body: Stmt[], at: Position): FunctionInfo {
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

  protected parseParams(end: string): Param[] {
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

  protected checkTarget(e: Expr, what: string): void {
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

  protected abstract parseTest(): Expr;
}

/** Where an expression's text starts (an index or call node sits at its bracket). */
export function startOf(e: Expr): Position {
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

export function describe(e: Expr): string {
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
