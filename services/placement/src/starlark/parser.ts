// Recursive-descent parser for the Starlark grammar (bazelbuild/starlark spec.md),
// written from the spec's grammar: statements and layout here, expressions in
// parse-expr.ts. Deep nesting is refused with a clear error long before the JS
// stack could overflow.
import type { BinaryOp, Module, NameExpr, Stmt } from "./ast.ts";
import { syntaxError } from "./errors.ts";
import { tokenize } from "./lexer.ts";
import { ExpressionParser, describe, startOf, type ParseOptions } from "./parse-expr.ts";

export type { ParseOptions } from "./parse-expr.ts";

const AUGMENTED = new Map<string, BinaryOp>([
  ["+=", "+"], ["-=", "-"], ["*=", "*"], ["/=", "/"], ["//=", "//"], ["%=", "%"],
  ["&=", "&"], ["|=", "|"], ["^=", "^"], ["<<=", "<<"], [">>=", ">>"],
]);

export function parse(src: string, opts: ParseOptions = {}): Module {
  const toks = tokenize(src, { maxSourceLength: opts.maxSourceLength });
  return new Parser(toks, opts).parseModule();
}

class Parser extends ExpressionParser {
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

}
