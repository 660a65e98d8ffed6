// Methods of string values. Indices are UTF-16 code units, as JS strings are
// (Go Starlark counts bytes); placement scriptlets work on ASCII names and keys.
import { noKwargs, optInt, stringOrTuple, unpack, wantInt, wantString } from "./args.ts";
import { runtimeError } from "./errors.ts";
import { strFormat } from "./format.ts";
import { sliceIndices } from "./operators.ts";
import { str } from "./repr.ts";
import { StarList, StarTuple, iterableElems, type Kwargs, type Thread, type Value } from "./values.ts";

export type MethodImpl = (th: Thread, recv: Value, args: Value[], kwargs: Kwargs) => Value;

const WS = /\s/;

/** Bounds of s[start:end] for the search methods. */
function span(fname: string, s: string, start: Value | undefined, end: Value | undefined): [number, number] {
  const [a, b] = sliceIndices(s.length, start ?? null, end ?? null, null);
  optInt(fname, start, "start");
  optInt(fname, end, "end");
  return [a, Math.max(a, b)];
}

function stripChars(s: string, chars: Value | undefined, left: boolean, right: boolean, fname: string): string {
  const set = chars === undefined || chars === null ? null : wantString(fname, chars, "chars");
  const drop = (c: string) => (set === null ? WS.test(c) : set.includes(c));
  let a = 0;
  let b = s.length;
  if (left) while (a < b && drop(s[a])) a++;
  if (right) while (b > a && drop(s[b - 1])) b--;
  return s.slice(a, b);
}

function split(th: Thread, s: string, sepV: Value | undefined, maxV: Value | undefined, fromRight: boolean, fname: string): Value {
  const max = maxV === undefined || maxV === null ? -1 : wantInt(fname, maxV, "maxsplit");
  let parts: string[];
  if (sepV === undefined || sepV === null) {
    // Whitespace splitting drops empty fields.
    const words: string[] = [];
    const str0 = fromRight ? [...s].reverse().join("") : s;
    let i = 0;
    const n = str0.length;
    while (i < n) {
      while (i < n && WS.test(str0[i])) i++;
      if (i >= n) break;
      if (max >= 0 && words.length === max) {
        let rest = str0.slice(i);
        rest = rest.replace(/\s+$/, "");
        words.push(rest);
        break;
      }
      let j = i;
      while (j < n && !WS.test(str0[j])) j++;
      words.push(str0.slice(i, j));
      i = j;
    }
    parts = fromRight ? words.map((w) => [...w].reverse().join("")).reverse() : words;
  } else {
    const sep = wantString(fname, sepV, "sep");
    if (sep === "") throw runtimeError(`${fname}: empty separator`);
    const all = s.split(sep);
    if (max < 0 || all.length - 1 <= max) parts = all;
    else if (!fromRight) parts = [...all.slice(0, max), all.slice(max).join(sep)];
    else parts = [all.slice(0, all.length - max).join(sep), ...all.slice(all.length - max)];
  }
  th.alloc(parts.length * 8 + s.length * 2);
  return new StarList(parts);
}

function isCased(c: string): boolean {
  return c.toLowerCase() !== c.toUpperCase();
}

function title(s: string): string {
  let out = "";
  let prevCased = false;
  for (const c of s) {
    out += prevCased ? c.toLowerCase() : c.toUpperCase();
    prevCased = isCased(c);
  }
  return out;
}

function find(fname: string, s: string, args: Value[], kwargs: Kwargs, last: boolean): number {
  noKwargs(fname, kwargs);
  const [subV, start, end] = unpack(fname, args, null, ["sub", "start?", "end?"]);
  const sub = wantString(fname, subV, "sub");
  const [a, b] = span(fname, s, start, end);
  const hay = s.slice(a, b);
  const i = last ? hay.lastIndexOf(sub) : hay.indexOf(sub);
  return i < 0 ? -1 : i + a;
}

function predicate(test: (s: string) => boolean): MethodImpl {
  return (_th, recv, args, kwargs) => {
    noKwargs("predicate", kwargs);
    if (args.length > 0) throw runtimeError("this method takes no arguments");
    return test(recv as string);
  };
}

export const stringMethods = new Map<string, MethodImpl>([
  ["capitalize", (_th, s) => {
    const x = s as string;
    return x.length === 0 ? x : x[0].toUpperCase() + x.slice(1).toLowerCase();
  }],
  ["count", (_th, s, args, kwargs) => {
    const [subV, start, end] = unpack("count", args, kwargs, ["sub", "start?", "end?"]);
    const sub = wantString("count", subV, "sub");
    const [a, b] = span("count", s as string, start, end);
    const hay = (s as string).slice(a, b);
    if (sub === "") return hay.length + 1;
    return hay.split(sub).length - 1;
  }],
  ["elems", (th, s, args) => {
    if (args.length > 0) throw runtimeError("elems: takes no arguments");
    const chars = [...(s as string)];
    th.alloc(chars.length * 8);
    return new StarList(chars);
  }],
  ["endswith", (_th, s, args, kwargs) => {
    const [sufV, start, end] = unpack("endswith", args, kwargs, ["suffix", "start?", "end?"]);
    const [a, b] = span("endswith", s as string, start, end);
    const hay = (s as string).slice(a, b);
    return stringOrTuple("endswith", sufV, "suffix").some((x) => hay.endsWith(x));
  }],
  ["find", (_th, s, args, kwargs) => find("find", s as string, args, kwargs, false)],
  ["format", (th, s, args, kwargs) => strFormat(th, s as string, args, kwargs)],
  ["index", (_th, s, args, kwargs) => {
    const i = find("index", s as string, args, kwargs, false);
    if (i < 0) throw runtimeError("index: substring not found");
    return i;
  }],
  ["isalnum", predicate((s) => /^[\p{L}\p{N}]+$/u.test(s))],
  ["isalpha", predicate((s) => /^\p{L}+$/u.test(s))],
  ["isdigit", predicate((s) => /^\p{Nd}+$/u.test(s))],
  ["islower", predicate((s) => [...s].some(isCased) && s === s.toLowerCase())],
  ["isspace", predicate((s) => /^\s+$/.test(s))],
  ["istitle", predicate((s) => [...s].some(isCased) && s === title(s))],
  ["isupper", predicate((s) => [...s].some(isCased) && s === s.toUpperCase())],
  ["join", (th, s, args, kwargs) => {
    const [it] = unpack("join", args, kwargs, ["iterable"]);
    const elems = iterableElems(it!, "join");
    const parts: string[] = [];
    const n = elems.length;
    for (let i = 0; i < n; i++) {
      const e = Array.isArray(elems) ? elems[i] : (elems as { at(i: number): number }).at(i);
      parts.push(wantString("join", e, `element ${i}`));
    }
    const out = parts.join(s as string);
    th.alloc(out.length * 2);
    return out;
  }],
  ["lower", (_th, s) => (s as string).toLowerCase()],
  ["lstrip", (_th, s, args, kwargs) => stripChars(s as string, unpack("lstrip", args, kwargs, ["chars?"])[0], true, false, "lstrip")],
  ["partition", (_th, s, args, kwargs) => partition(s as string, args, kwargs, false)],
  ["removeprefix", (_th, s, args, kwargs) => {
    const p = wantString("removeprefix", unpack("removeprefix", args, kwargs, ["prefix"])[0], "prefix");
    return (s as string).startsWith(p) ? (s as string).slice(p.length) : s;
  }],
  ["removesuffix", (_th, s, args, kwargs) => {
    const p = wantString("removesuffix", unpack("removesuffix", args, kwargs, ["suffix"])[0], "suffix");
    return p !== "" && (s as string).endsWith(p) ? (s as string).slice(0, -p.length) : s;
  }],
  ["replace", (th, s, args, kwargs) => {
    const [oldV, newV, countV] = unpack("replace", args, kwargs, ["old", "new", "count?"]);
    const from = wantString("replace", oldV, "old");
    const to = wantString("replace", newV, "new");
    const count = countV === undefined || countV === null ? -1 : wantInt("replace", countV, "count");
    const parts = (s as string).split(from);
    let out: string;
    if (count < 0 || count >= parts.length - 1) out = parts.join(to);
    else out = parts.slice(0, count + 1).join(to) + from + parts.slice(count + 1).join(from);
    th.alloc(out.length * 2);
    return out;
  }],
  ["rfind", (_th, s, args, kwargs) => find("rfind", s as string, args, kwargs, true)],
  ["rindex", (_th, s, args, kwargs) => {
    const i = find("rindex", s as string, args, kwargs, true);
    if (i < 0) throw runtimeError("rindex: substring not found");
    return i;
  }],
  ["rpartition", (_th, s, args, kwargs) => partition(s as string, args, kwargs, true)],
  ["rsplit", (th, s, args, kwargs) => {
    const [sep, max] = unpack("rsplit", args, kwargs, ["sep?", "maxsplit?"]);
    return split(th, s as string, sep, max, true, "rsplit");
  }],
  ["rstrip", (_th, s, args, kwargs) => stripChars(s as string, unpack("rstrip", args, kwargs, ["chars?"])[0], false, true, "rstrip")],
  ["split", (th, s, args, kwargs) => {
    const [sep, max] = unpack("split", args, kwargs, ["sep?", "maxsplit?"]);
    return split(th, s as string, sep, max, false, "split");
  }],
  ["splitlines", (th, s, args, kwargs) => {
    const [keep] = unpack("splitlines", args, kwargs, ["keepends?"]);
    const x = s as string;
    const lines: string[] = [];
    const re = /\r\n|\r|\n/g;
    let last = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(x)) !== null) {
      lines.push(x.slice(last, keep === true ? m.index + m[0].length : m.index));
      last = m.index + m[0].length;
    }
    if (last < x.length) lines.push(x.slice(last));
    th.alloc(lines.length * 8 + x.length * 2);
    return new StarList(lines);
  }],
  ["startswith", (_th, s, args, kwargs) => {
    const [preV, start, end] = unpack("startswith", args, kwargs, ["prefix", "start?", "end?"]);
    const [a, b] = span("startswith", s as string, start, end);
    const hay = (s as string).slice(a, b);
    return stringOrTuple("startswith", preV, "prefix").some((x) => hay.startsWith(x));
  }],
  ["strip", (_th, s, args, kwargs) => stripChars(s as string, unpack("strip", args, kwargs, ["chars?"])[0], true, true, "strip")],
  ["title", (_th, s) => title(s as string)],
  ["upper", (_th, s) => (s as string).toUpperCase()],
]);

function partition(s: string, args: Value[], kwargs: Kwargs, last: boolean): Value {
  const fname = last ? "rpartition" : "partition";
  const sep = wantString(fname, unpack(fname, args, kwargs, ["sep"])[0], "sep");
  if (sep === "") throw runtimeError(`${fname}: empty separator`);
  const i = last ? s.lastIndexOf(sep) : s.indexOf(sep);
  if (i < 0) return new StarTuple(last ? ["", "", s] : [s, "", ""]);
  return new StarTuple([s.slice(0, i), sep, s.slice(i + sep.length)]);
}

export { str };
