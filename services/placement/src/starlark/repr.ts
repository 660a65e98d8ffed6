// str() and repr() of values. Strings quote with double quotes as Starlark does;
// a list that contains itself prints as [...] instead of looping forever, and very
// deep nesting is an error instead of a JS stack overflow.
import { runtimeError } from "./errors.ts";
import {
  Builtin, StarDict, StarFloat, StarFunction, StarList, StarRange, StarStruct, StarTuple, type Value,
} from "./values.ts";

const MAX_REPR_DEPTH = 200;

export function formatFloat(f: number): string {
  if (Number.isNaN(f)) return "nan";
  if (!Number.isFinite(f)) return f > 0 ? "+inf" : "-inf";
  if (Number.isInteger(f) && Math.abs(f) < 1e16) return (Object.is(f, -0) ? "-" : "") + f.toFixed(0) + ".0";
  const s = Math.abs(f) >= 1e16 ? f.toExponential() : String(f);
  // Python and Go print at least two exponent digits: 1e-07, 1e+16.
  return s.replace(/e([+-])(\d)$/, "e$10$2");
}

export function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    const code = s.charCodeAt(i);
    if (c === '"') out += '\\"';
    else if (c === "\\") out += "\\\\";
    else if (c === "\n") out += "\\n";
    else if (c === "\t") out += "\\t";
    else if (c === "\r") out += "\\r";
    else if (code < 0x20 || code === 0x7f) out += "\\x" + code.toString(16).padStart(2, "0");
    else out += c;
  }
  return out + '"';
}

export function str(v: Value): string {
  return typeof v === "string" ? v : repr(v);
}

export function repr(v: Value): string {
  const parts: string[] = [];
  write(v, parts, [], 0);
  return parts.join("");
}

function write(v: Value, out: string[], path: object[], depth: number): void {
  if (v === null) {
    out.push("None");
    return;
  }
  switch (typeof v) {
    case "boolean":
      out.push(v ? "True" : "False");
      return;
    case "number":
      out.push(String(v));
      return;
    case "bigint":
      out.push(v.toString());
      return;
    case "string":
      out.push(quote(v));
      return;
  }
  if (v instanceof StarFloat) {
    out.push(formatFloat(v.v));
    return;
  }
  if (depth > MAX_REPR_DEPTH) throw runtimeError("value is nested too deeply to print");
  if (v instanceof StarList || v instanceof StarTuple || v instanceof StarDict || v instanceof StarStruct) {
    if (path.includes(v)) {
      out.push(v instanceof StarDict ? "{...}" : v instanceof StarStruct ? "struct(...)" : "[...]");
      return;
    }
    path.push(v);
    if (v instanceof StarList || v instanceof StarTuple) {
      const isList = v instanceof StarList;
      out.push(isList ? "[" : "(");
      v.elems.forEach((e, i) => {
        if (i > 0) out.push(", ");
        write(e, out, path, depth + 1);
      });
      if (!isList && v.elems.length === 1) out.push(",");
      out.push(isList ? "]" : ")");
    } else if (v instanceof StarDict) {
      out.push("{");
      let first = true;
      for (const [k, val] of v.map.values()) {
        if (!first) out.push(", ");
        first = false;
        write(k, out, path, depth + 1);
        out.push(": ");
        write(val, out, path, depth + 1);
      }
      out.push("}");
    } else {
      out.push(v.typeLabel === "struct" ? "struct(" : `${v.typeLabel}(`);
      let first = true;
      for (const [k, val] of v.fields) {
        if (!first) out.push(", ");
        first = false;
        out.push(k, " = ");
        write(val, out, path, depth + 1);
      }
      out.push(")");
    }
    path.pop();
    return;
  }
  if (v instanceof StarRange) {
    out.push(v.step === 1 ? `range(${v.start}, ${v.stop})` : `range(${v.start}, ${v.stop}, ${v.step})`);
    return;
  }
  if (v instanceof StarFunction) {
    out.push(`<function ${v.name}>`);
    return;
  }
  if (v instanceof Builtin) {
    out.push(v.recv === undefined ? `<built-in function ${v.name}>` : `<built-in method ${v.name}>`);
  }
}
