// Lexer and parser: layout, positions, and the syntax Starlark refuses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tokenize } from "../src/starlark/lexer.ts";
import { parse } from "../src/starlark/parser.ts";
import { StarlarkError, compile } from "../src/starlark/index.ts";

function syntaxErrorOf(src: string, opts = {}): StarlarkError {
  try {
    compile(src, opts);
  } catch (err) {
    assert.ok(err instanceof StarlarkError, `expected a StarlarkError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected the source to be refused");
}

test("tokens carry line and column; blocks produce INDENT and DEDENT", () => {
  const toks = tokenize("def f(x):\n    if x:\n        return 1\n    return 2\n");
  const kinds = toks.map((t) => (t.kind === "name" || t.kind === "keyword" || t.kind === "op" ? t.text : t.kind));
  assert.deepEqual(kinds, [
    "def", "f", "(", "x", ")", ":", "newline",
    "indent", "if", "x", ":", "newline",
    "indent", "return", "int", "newline",
    "dedent", "return", "int", "newline",
    "dedent", "eof",
  ]);
  const ret2 = toks.filter((t) => t.text === "return")[1];
  assert.deepEqual([ret2.line, ret2.column], [4, 5]);
});

test("blank lines, comments, bracket continuation and backslashes do not affect layout", () => {
  const m = parse("x = [1,\n  2,\n# comment\n      3]\n\n   # indented comment\ny = 1 + \\\n  2\n");
  assert.equal(m.body.length, 2);
});

test("tabs indent to the next multiple of 8", () => {
  const m = parse("def f():\n\tif True:\n\t\treturn 1\n\treturn 2\n");
  assert.equal(m.body.length, 1);
});

test("an unindent that matches no outer level is refused with its line", () => {
  const e = syntaxErrorOf("def f():\n        x = 1\n    y = 2\n");
  assert.equal(e.line, 3);
  assert.match(e.message, /^scriptlet:3:5: unindent does not match any outer indentation level$/);
});

test("unexpected indentation and a missing block are refused", () => {
  assert.match(syntaxErrorOf("x = 1\n    y = 2\n").message, /^scriptlet:2:5: unexpected indentation/);
  assert.match(syntaxErrorOf("def f():\nreturn 1\n").message, /^scriptlet:2:1: .*expected an indented block/);
  assert.match(syntaxErrorOf("if True\n    pass\n").message, /^scriptlet:1:8: got newline, expected ':'/);
});

test("string literals: escapes, raw strings, triple quotes; unterminated ones are refused", () => {
  const toks = tokenize(`a = "x\\ty\\u00e9\\x41" + r"\\d+" + '''one\ntwo'''`);
  const strings = toks.filter((t) => t.kind === "string").map((t) => t.text);
  assert.deepEqual(strings, ["x\tyéA", "\\d+", "one\ntwo"]);
  assert.match(syntaxErrorOf(`x = "abc\n`).message, /^scriptlet:1:5: unterminated string literal$/);
  assert.match(syntaxErrorOf(`x = "\\q"`).message, /invalid escape sequence \\q/);
});

test("number literals: hex, octal, binary, floats; Python 2 octal is refused", () => {
  const toks = tokenize("0x1F 0o17 0b101 1.5 2e3 .5 9007199254740993");
  assert.deepEqual(toks.slice(0, 7).map((t) => t.int ?? t.float), [31, 15, 5, 1.5, 2000, 0.5, 9007199254740993n]);
  assert.match(syntaxErrorOf("x = 017").message, /obsolete form of octal literal/);
});

test("comparison chains are a syntax error, not a chain", () => {
  const e = syntaxErrorOf("def f(a, b, c):\n    return a < b < c\n");
  assert.equal(e.kind, "syntax");
  assert.equal(e.line, 2);
  assert.match(e.detail, /cannot be chained/);
  compile("def f(a, b, c):\n    return a < b and b < c\n");
  compile("def f(a, b, c):\n    return (a < b) == c\n");
});

test("while is refused unless the host enables it", () => {
  const src = "def f():\n    i = 0\n    while i < 3:\n        i += 1\n    return i\n";
  const e = syntaxErrorOf(src);
  assert.equal(e.line, 3);
  assert.match(e.detail, /while loops are not allowed/);
  compile(src, { allowWhile: true });
});

test("load, reserved keywords, ** and adjacent strings are refused with a reason", () => {
  assert.match(syntaxErrorOf(`load("x.star", "y")`).detail, /load statements are not supported/);
  assert.match(syntaxErrorOf(`load = 1`).detail, /load is a keyword and cannot be used as a name/);
  assert.match(syntaxErrorOf(`x = load + 1`).detail, /load is a keyword/);
  assert.match(syntaxErrorOf("import os").detail, /keyword import is reserved/);
  assert.match(syntaxErrorOf("class A:\n    pass\n").detail, /keyword class is reserved/);
  assert.match(syntaxErrorOf("x = 2 ** 3").detail, /got '\*\*'/);
  assert.match(syntaxErrorOf(`x = "a" "b"`).detail, /adjacent string literals/);
  assert.match(syntaxErrorOf("x = {1, 2}").detail, /Starlark has no sets/);
  assert.match(syntaxErrorOf("f(x=1, 2)").detail, /positional argument may not follow/);
  assert.match(syntaxErrorOf("def f(a=1, b):\n    pass\n").detail, /may not follow an optional one/);
  assert.match(syntaxErrorOf("a = b = 1").detail, /chained assignment/);
  assert.match(syntaxErrorOf("f() = 1").detail, /cannot assign to a function call/);
});

test("return, break and continue outside their place are refused before running", () => {
  assert.match(syntaxErrorOf("return 1").detail, /return statement not within a function/);
  assert.match(syntaxErrorOf("def f():\n    break\n").detail, /break not in a loop/);
});

test("deep nesting gives a clear error instead of a stack overflow", () => {
  const deep = "x = " + "(".repeat(5000) + "1" + ")".repeat(5000);
  const e = syntaxErrorOf(deep);
  assert.match(e.message, /^scriptlet:1:\d+: nesting too deep \(limit 100\)$/);
  const deepList = "x = " + "[".repeat(300) + "]".repeat(300);
  assert.match(syntaxErrorOf(deepList).detail, /nesting too deep/);
  const unary = "x = " + "-".repeat(300) + "1";
  assert.match(syntaxErrorOf(unary).detail, /nesting too deep/);
  let blocks = "def f(x):\n";
  for (let i = 1; i <= 150; i++) blocks += " ".repeat(i * 2) + "if x:\n";
  blocks += " ".repeat(302) + "pass\n";
  assert.match(syntaxErrorOf(blocks).detail, /nesting too deep/);
  const longChain = "x = " + Array.from({ length: 2000 }, () => "1").join(" + ");
  assert.match(syntaxErrorOf(longChain).detail, /expression too long/);
});

test("the source length is bounded", () => {
  assert.match(syntaxErrorOf("#".repeat(2_000_001)).detail, /source is too long/);
});

test("undefined names are found before the program runs, with their position", () => {
  const e = syntaxErrorOf("def f():\n    return undefined_thing\n");
  assert.equal(e.kind, "resolve");
  assert.equal(e.message, "scriptlet:2:12: undefined: undefined_thing");
  compile("def f():\n    return later\nlater = 1\n");
});
