// String formatting: the `%` operator and str.format. Written from the Starlark
// spec: str.format takes no format specs (":..."), while `%` takes the usual
// conversions with optional flags, width and precision.
import { runtimeError } from "./errors.ts";
import { formatFloat, repr, str } from "./repr.ts";
import { StarDict, StarFloat, StarTuple, typeName, type Kwargs, type Thread, type Value } from "./values.ts";

function padExp(s: string): string {
  return s.replace(/e([+-])(\d)$/, "e$10$2");
}

/** %g as C and Python define it: exponent form when exp < -4 or exp >= precision. */
function formatG(f: number, prec: number, upper: boolean): string {
  if (!Number.isFinite(f)) return formatFloat(f);
  const p = prec === 0 ? 1 : prec;
  if (f === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(Number(f.toPrecision(p)))));
  let s: string;
  if (exp < -4 || exp >= p) {
    s = f.toExponential(p - 1);
    s = s.replace(/\.?0+e/, "e");
    s = padExp(s);
  } else {
    s = f.toFixed(Math.max(0, p - 1 - exp));
    if (s.includes(".")) s = s.replace(/\.?0+$/, "");
  }
  return upper ? s.toUpperCase() : s;
}

function toNumber(v: Value, conv: string): number | bigint {
  if (typeof v === "number" || typeof v === "bigint") return v;
  if (v instanceof StarFloat) return v.v;
  throw runtimeError(`%${conv} format requires a number, not ${typeName(v)}`);
}

function intPart(v: number | bigint): bigint | number {
  return typeof v === "bigint" ? v : Number.isInteger(v) ? v : Math.trunc(v);
}

function convert(conv: string, v: Value, prec: number | undefined, flags: string): string {
  switch (conv) {
    case "s":
      return str(v);
    case "r":
      return repr(v);
    case "d":
    case "i": {
      const n = toNumber(v, conv);
      if (typeof n === "number" && !Number.isFinite(n)) throw runtimeError(`cannot convert ${formatFloat(n)} to int`);
      const s = String(intPart(n));
      return signed(s, flags);
    }
    case "x":
    case "X":
    case "o": {
      if (typeof v !== "number" && typeof v !== "bigint") throw runtimeError(`%${conv} format requires an int, not ${typeName(v)}`);
      const big = BigInt(v);
      const radix = conv === "o" ? 8 : 16;
      let s = (big < 0n ? "-" : "") + (big < 0n ? -big : big).toString(radix);
      if (conv === "X") s = s.toUpperCase();
      if (flags.includes("#")) s = s.replace(/^(-?)/, `$1${conv === "o" ? "0o" : conv === "x" ? "0x" : "0X"}`);
      return signed(s, flags);
    }
    case "e":
    case "E":
    case "f":
    case "F":
    case "g":
    case "G": {
      const f = Number(toNumber(v, conv));
      const p = prec ?? 6;
      let s: string;
      if (!Number.isFinite(f)) s = Number.isNaN(f) ? "nan" : f > 0 ? "inf" : "-inf";
      else if (conv === "f" || conv === "F") s = f.toFixed(p);
      else if (conv === "e" || conv === "E") s = padExp(f.toExponential(p));
      else s = formatG(f, p, false);
      if (conv === "E" || conv === "F" || conv === "G") s = s.toUpperCase();
      return signed(s, flags);
    }
    case "c":
      if (typeof v === "string") {
        if ([...v].length !== 1) throw runtimeError(`%c format requires a single-character string, not ${repr(v)}`);
        return v;
      }
      if (typeof v === "number" && v >= 0 && v <= 0x10ffff) return String.fromCodePoint(v);
      throw runtimeError(`%c format requires an int or a single-character string, not ${typeName(v)}`);
  }
  throw runtimeError(`unsupported format character '${conv}'`);
}

function signed(s: string, flags: string): string {
  if (s.startsWith("-")) return s;
  if (flags.includes("+")) return "+" + s;
  if (flags.includes(" ")) return " " + s;
  return s;
}

export function percentFormat(th: Thread, fmt: string, arg: Value): string {
  const args = arg instanceof StarTuple ? arg.elems : [arg];
  const mapping = arg instanceof StarDict ? arg : null;
  let next = 0;
  let out = "";
  let i = 0;
  while (i < fmt.length) {
    const pct = fmt.indexOf("%", i);
    if (pct < 0) {
      out += fmt.slice(i);
      break;
    }
    out += fmt.slice(i, pct);
    i = pct + 1;
    if (i >= fmt.length) throw runtimeError("incomplete format");
    if (fmt[i] === "%") {
      out += "%";
      i++;
      continue;
    }
    let value: Value | undefined;
    if (fmt[i] === "(") {
      const close = fmt.indexOf(")", i);
      if (close < 0) throw runtimeError("incomplete format key");
      if (mapping === null) throw runtimeError("format requires a mapping");
      const key = fmt.slice(i + 1, close);
      value = mapping.get(key);
      if (value === undefined) throw runtimeError(`key ${repr(key)} not in dict`);
      i = close + 1;
    }
    let flags = "";
    while (i < fmt.length && "-+ 0#".includes(fmt[i])) flags += fmt[i++];
    let width = 0;
    while (i < fmt.length && fmt[i] >= "0" && fmt[i] <= "9") width = width * 10 + (fmt.charCodeAt(i++) - 48);
    let prec: number | undefined;
    if (fmt[i] === ".") {
      i++;
      prec = 0;
      while (i < fmt.length && fmt[i] >= "0" && fmt[i] <= "9") prec = prec * 10 + (fmt.charCodeAt(i++) - 48);
    }
    if (i >= fmt.length) throw runtimeError("incomplete format");
    const conv = fmt[i++];
    if (value === undefined) {
      if (next >= args.length) throw runtimeError("not enough arguments for format string");
      value = args[next++];
    }
    let s = convert(conv, value, prec, flags);
    if ((conv === "s" || conv === "r") && prec !== undefined) s = s.slice(0, prec);
    if (s.length < width) {
      if (flags.includes("-")) s = s.padEnd(width);
      else if (flags.includes("0") && "dioxXeEfFgG".includes(conv)) {
        const sign = /^[-+ ]/.test(s) ? s[0] : "";
        s = sign + s.slice(sign.length).padStart(width - sign.length, "0");
      } else s = s.padStart(width);
    }
    th.alloc(s.length * 2);
    out += s;
  }
  if (mapping === null && next < args.length) throw runtimeError("too many arguments for format string");
  return out;
}

/** str.format: "{}", "{0}", "{name}", "{!r}", "{{" and "}}". */
export function strFormat(th: Thread, fmt: string, args: Value[], kwargs: Kwargs): string {
  let out = "";
  let auto = 0;
  let mode: "auto" | "manual" | undefined;
  let i = 0;
  while (i < fmt.length) {
    const c = fmt[i];
    if (c === "}") {
      if (fmt[i + 1] === "}") {
        out += "}";
        i += 2;
        continue;
      }
      throw runtimeError("single '}' in format");
    }
    if (c !== "{") {
      out += c;
      i++;
      continue;
    }
    if (fmt[i + 1] === "{") {
      out += "{";
      i += 2;
      continue;
    }
    const close = fmt.indexOf("}", i);
    if (close < 0) throw runtimeError("unmatched '{' in format");
    let field = fmt.slice(i + 1, close);
    i = close + 1;
    let conv = "s";
    const bang = field.indexOf("!");
    if (field.includes(":")) throw runtimeError("format spec features (':...') are not supported in replacement fields");
    if (bang >= 0) {
      conv = field.slice(bang + 1);
      field = field.slice(0, bang);
      if (conv !== "s" && conv !== "r") throw runtimeError(`unknown conversion "!${conv}"`);
    }
    let value: Value;
    if (field === "") {
      if (mode === "manual") throw runtimeError("cannot switch from manual field specification to automatic field numbering");
      mode = "auto";
      if (auto >= args.length) throw runtimeError(`tuple index out of range: no argument for field ${auto}`);
      value = args[auto++];
    } else if (/^\d+$/.test(field)) {
      if (mode === "auto") throw runtimeError("cannot switch from automatic field numbering to manual field specification");
      mode = "manual";
      const n = Number(field);
      if (n >= args.length) throw runtimeError(`tuple index out of range: no argument for field ${n}`);
      value = args[n];
    } else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(field)) {
      const kv = kwargs?.find(([k]) => k === field);
      if (!kv) throw runtimeError(`keyword ${field} not found`);
      value = kv[1];
    } else {
      throw runtimeError(`field name syntax {${field}} is not supported (attribute and index access are not allowed)`);
    }
    const s = conv === "r" ? repr(value) : str(value);
    th.alloc(s.length * 2);
    out += s;
  }
  return out;
}
