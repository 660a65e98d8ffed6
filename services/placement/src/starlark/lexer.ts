// Starlark lexer: Python-style layout (NEWLINE / INDENT / DEDENT tokens, implicit
// line joining inside brackets, backslash continuation) with a line and column on
// every token so that every later error can name where it happened.
import { syntaxError } from "./errors.ts";

export type TokenKind =
  | "name"
  | "int"
  | "float"
  | "string"
  | "op"
  | "keyword"
  | "newline"
  | "indent"
  | "dedent"
  | "eof";

export interface Token {
  kind: TokenKind;
  /** Identifier, keyword or operator text; decoded value for strings. */
  text: string;
  /** Value of an int literal (a bigint only beyond the safe-integer range). */
  int?: number | bigint;
  /** Value of a float literal. */
  float?: number;
  line: number;
  column: number;
}

const KEYWORDS = new Set([
  "and", "break", "continue", "def", "elif", "else", "for", "if", "in", "lambda",
  "load", "not", "or", "pass", "return", "while", "None", "True", "False",
]);

// Python keywords that Starlark reserves so that scripts stay forward compatible.
const RESERVED = new Set([
  "as", "assert", "async", "await", "class", "del", "except", "finally", "from",
  "global", "import", "is", "nonlocal", "raise", "try", "with", "yield",
]);

// Operators by length; the lexer tries the longest first, so "//=" wins over "//" and "/".
const OPERATORS3 = new Set(["//=", "<<=", ">>="]);
const OPERATORS2 = new Set([
  "**", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "//", "<<", ">>",
]);
const OPERATORS1 = new Set([
  "+", "-", "*", "/", "%", "&", "|", "^", "~", "(", ")", "[", "]", "{", "}", ",", ":", ";", ".", "=", "<", ">",
]);

const OPEN = new Set(["(", "[", "{"]);
const CLOSE = new Set([")", "]", "}"]);

export interface LexOptions {
  /** Longest source accepted, in characters. */
  maxSourceLength?: number;
}

function isIdentStart(c: string): boolean {
  return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
}
function isIdentPart(c: string): boolean {
  return isIdentStart(c) || (c >= "0" && c <= "9");
}
function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

function normInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function tokenize(src: string, opts: LexOptions = {}): Token[] {
  const maxLen = opts.maxSourceLength ?? 1_000_000;
  if (src.length > maxLen) {
    throw syntaxError(`source is too long (${src.length} characters, limit ${maxLen})`, { line: 1, column: 1 });
  }
  const toks: Token[] = [];
  const indents: number[] = [0];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let depth = 0; // bracket nesting: layout is ignored inside brackets
  const brackets: { ch: string; line: number; column: number }[] = [];
  let atLineStart = true;

  const col = (at: number) => at - lineStart + 1;
  const push = (kind: TokenKind, text: string, at: number, atLine = line, atLineStartOffset = lineStart) => {
    toks.push({ kind, text, line: atLine, column: at - atLineStartOffset + 1 });
  };

  while (i <= src.length) {
    if (atLineStart && depth === 0) {
      // Measure indentation; tabs advance to the next multiple of 8 as in Python.
      let width = 0;
      let j = i;
      for (; j < src.length; j++) {
        const c = src[j];
        if (c === " ") width++;
        else if (c === "\t") width = width - (width % 8) + 8;
        else if (c === "\f") width = 0;
        else break;
      }
      const c = src[j];
      if (j >= src.length) {
        i = j;
        break;
      }
      if (c === "\n" || c === "\r" || c === "#") {
        // Blank or comment-only lines do not affect layout.
        while (j < src.length && src[j] !== "\n") j++;
        i = j + 1;
        line++;
        lineStart = i;
        continue;
      }
      if (c === "\\" && (src[j + 1] === "\n" || (src[j + 1] === "\r" && src[j + 2] === "\n"))) {
        throw syntaxError("unexpected line continuation at start of line", { line, column: col(j) });
      }
      const cur = indents[indents.length - 1];
      if (width > cur) {
        indents.push(width);
        push("indent", "", j);
      } else if (width < cur) {
        while (width < indents[indents.length - 1]) {
          indents.pop();
          push("dedent", "", j);
        }
        if (width !== indents[indents.length - 1]) {
          throw syntaxError("unindent does not match any outer indentation level", { line, column: col(j) });
        }
      }
      i = j;
      atLineStart = false;
    }
    if (i >= src.length) break;
    const c = src[i];

    if (c === " " || c === "\t" || c === "\f" || c === "\r") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === "\\") {
      if (src[i + 1] === "\n") {
        i += 2;
        line++;
        lineStart = i;
        continue;
      }
      if (src[i + 1] === "\r" && src[i + 2] === "\n") {
        i += 3;
        line++;
        lineStart = i;
        continue;
      }
      throw syntaxError("unexpected character '\\'", { line, column: col(i) });
    }
    if (c === "\n") {
      if (depth === 0) push("newline", "", i);
      i++;
      line++;
      lineStart = i;
      if (depth === 0) atLineStart = true;
      continue;
    }

    const startCol = col(i);
    const startLine = line;

    // Identifiers, keywords, and string prefixes (r"..." raw strings).
    if (isIdentStart(c)) {
      if ((c === "r" || c === "R") && (src[i + 1] === '"' || src[i + 1] === "'")) {
        i = lexString(i + 1, true, startLine, startCol);
        continue;
      }
      if ((c === "b" || c === "B") && (src[i + 1] === '"' || src[i + 1] === "'")) {
        throw syntaxError("bytes literals are not supported", { line, column: startCol });
      }
      let j = i + 1;
      while (j < src.length && isIdentPart(src[j])) j++;
      const word = src.slice(i, j);
      if (RESERVED.has(word)) {
        throw syntaxError(`keyword ${word} is reserved and cannot be used`, { line, column: startCol });
      }
      toks.push({ kind: KEYWORDS.has(word) ? "keyword" : "name", text: word, line, column: startCol });
      i = j;
      continue;
    }

    if (isDigit(c) || (c === "." && isDigit(src[i + 1] ?? ""))) {
      i = lexNumber(i, startCol);
      continue;
    }

    if (c === '"' || c === "'") {
      i = lexString(i, false, startLine, startCol);
      continue;
    }

    let op: string | undefined;
    if (OPERATORS3.has(src.slice(i, i + 3))) op = src.slice(i, i + 3);
    else if (OPERATORS2.has(src.slice(i, i + 2))) op = src.slice(i, i + 2);
    else if (OPERATORS1.has(c)) op = c;
    if (op === undefined) {
      const shown = c.charCodeAt(0) < 32 ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}` : c;
      throw syntaxError(`unexpected character '${shown}'`, { line, column: startCol });
    }
    if (OPEN.has(op)) {
      depth++;
      brackets.push({ ch: op, line, column: startCol });
    } else if (CLOSE.has(op)) {
      const open = brackets.pop();
      if (!open) throw syntaxError(`unexpected '${op}'`, { line, column: startCol });
      const want = open.ch === "(" ? ")" : open.ch === "[" ? "]" : "}";
      if (want !== op) {
        throw syntaxError(`'${op}' does not match '${open.ch}' at ${open.line}:${open.column}`, { line, column: startCol });
      }
      depth--;
    }
    toks.push({ kind: "op", text: op, line, column: startCol });
    i += op.length;
  }

  if (brackets.length > 0) {
    const open = brackets[brackets.length - 1];
    throw syntaxError(`unclosed '${open.ch}'`, { line: open.line, column: open.column });
  }
  const endCol = col(Math.min(i, src.length));
  if (toks.length > 0 && toks[toks.length - 1].kind !== "newline" && toks[toks.length - 1].kind !== "dedent") {
    toks.push({ kind: "newline", text: "", line, column: endCol });
  }
  while (indents.length > 1) {
    indents.pop();
    toks.push({ kind: "dedent", text: "", line, column: endCol });
  }
  toks.push({ kind: "eof", text: "", line, column: endCol });
  return toks;

  function lexNumber(start: number, startCol: number): number {
    let j = start;
    const c0 = src[j];
    const c1 = (src[j + 1] ?? "").toLowerCase();
    if (c0 === "0" && (c1 === "x" || c1 === "o" || c1 === "b")) {
      j += 2;
      const digitsStart = j;
      while (j < src.length && isIdentPart(src[j])) j++;
      const digits = src.slice(digitsStart, j);
      const re = c1 === "x" ? /^[0-9a-fA-F]+$/ : c1 === "o" ? /^[0-7]+$/ : /^[01]+$/;
      if (!re.test(digits)) {
        throw syntaxError(`invalid int literal ${src.slice(start, j)}`, { line, column: startCol });
      }
      toks.push({ kind: "int", text: src.slice(start, j), int: normInt(BigInt(`0${c1}${digits}`)), line, column: startCol });
      return j;
    }
    while (j < src.length && isDigit(src[j])) j++;
    let isFloat = false;
    if (src[j] === ".") {
      isFloat = true;
      j++;
      while (j < src.length && isDigit(src[j])) j++;
    }
    if (src[j] === "e" || src[j] === "E") {
      let k = j + 1;
      if (src[k] === "+" || src[k] === "-") k++;
      if (isDigit(src[k] ?? "")) {
        isFloat = true;
        j = k;
        while (j < src.length && isDigit(src[j])) j++;
      }
    }
    if (j < src.length && isIdentStart(src[j])) {
      throw syntaxError(`invalid number literal ${src.slice(start, j + 1)}`, { line, column: startCol });
    }
    const text = src.slice(start, j);
    if (isFloat) {
      toks.push({ kind: "float", text, float: Number(text), line, column: startCol });
    } else {
      if (text.length > 1 && text[0] === "0" && /[1-9]/.test(text)) {
        throw syntaxError(`obsolete form of octal literal ${text}; use 0o${text.replace(/^0+/, "")}`, { line, column: startCol });
      }
      toks.push({ kind: "int", text, int: normInt(BigInt(text)), line, column: startCol });
    }
    return j;
  }

  function lexString(q: number, raw: boolean, startLine: number, startCol: number): number {
    const quote = src[q];
    const triple = src[q + 1] === quote && src[q + 2] === quote;
    let j = q + (triple ? 3 : 1);
    let out = "";
    for (;;) {
      if (j >= src.length) {
        throw syntaxError("unterminated string literal", { line: startLine, column: startCol });
      }
      const c = src[j];
      if (c === quote && (!triple || (src[j + 1] === quote && src[j + 2] === quote))) {
        j += triple ? 3 : 1;
        break;
      }
      if (c === "\n") {
        if (!triple) throw syntaxError("unterminated string literal", { line: startLine, column: startCol });
        out += "\n";
        j++;
        line++;
        lineStart = j;
        continue;
      }
      if (c !== "\\") {
        out += c;
        j++;
        continue;
      }
      // Escape sequences.
      const e = src[j + 1];
      if (e === undefined) throw syntaxError("unterminated string literal", { line: startLine, column: startCol });
      if (e === "\n") {
        // A backslash-newline continues the string on the next line.
        if (raw) out += "\\\n";
        j += 2;
        line++;
        lineStart = j;
        continue;
      }
      if (raw) {
        // In raw strings a backslash only protects the quote from ending the string.
        out += "\\" + e;
        j += 2;
        continue;
      }
      const simple: Record<string, string> = {
        n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"', a: "\x07", b: "\b", f: "\f", v: "\v",
      };
      if (Object.prototype.hasOwnProperty.call(simple, e)) {
        out += simple[e];
        j += 2;
        continue;
      }
      if (e >= "0" && e <= "7") {
        let k = j + 1;
        let n = 0;
        while (k < j + 4 && src[k] >= "0" && src[k] <= "7") n = n * 8 + (src.charCodeAt(k++) - 48);
        if (n > 255) throw syntaxError("octal escape value out of range", { line, column: col(j) });
        out += String.fromCharCode(n);
        j = k;
        continue;
      }
      const hexLen = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
      if (hexLen > 0) {
        const hex = src.slice(j + 2, j + 2 + hexLen);
        if (hex.length !== hexLen || !/^[0-9a-fA-F]+$/.test(hex)) {
          throw syntaxError(`invalid escape sequence \\${e}${hex}`, { line, column: col(j) });
        }
        const cp = parseInt(hex, 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
          throw syntaxError(`invalid Unicode code point in \\${e}${hex}`, { line, column: col(j) });
        }
        out += String.fromCodePoint(cp);
        j += 2 + hexLen;
        continue;
      }
      throw syntaxError(`invalid escape sequence \\${e}`, { line, column: col(j) });
    }
    toks.push({ kind: "string", text: out, line: startLine, column: startCol });
    return j;
  }
}
