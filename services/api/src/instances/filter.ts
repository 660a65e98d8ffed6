// LXD's API filtering (`?filter=`, the api_filtering extension) for listings: a
// subset — clauses `FIELD eq|ne VALUE` joined by `and`, optionally prefixed by `not`;
// FIELD is a top-level key or a dotted path (`config.image.os`, `state.status`,
// `expanded_config.limits.cpu`); values compare case-insensitively, may be quoted.
// Anything else (or, parentheses) is refused rather than silently ignored.
import { ApiError } from "../response.ts";

interface Clause {
  path: string;
  op: "eq" | "ne";
  value: string;
  not: boolean;
}

function tokens(text: string): string[] {
  const out: string[] = [];
  const re = /\s*("([^"]*)"|'([^']*)'|[^\s"']+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) out.push(m[2] ?? m[3] ?? m[1]);
  return out;
}

export function parseFilter(text: string): Clause[] {
  const t = tokens(text.trim());
  const clauses: Clause[] = [];
  let i = 0;
  while (i < t.length) {
    let not = false;
    if (t[i].toLowerCase() === "not") {
      not = true;
      i++;
    }
    const [path, op, value] = [t[i], t[i + 1]?.toLowerCase(), t[i + 2]];
    if (path === undefined || (op !== "eq" && op !== "ne") || value === undefined) throw ApiError.badRequest(`Invalid filter "${text}": expected FIELD eq|ne VALUE [and ...]`);
    clauses.push({ path, op, value, not });
    i += 3;
    if (i < t.length) {
      if (t[i].toLowerCase() !== "and") throw ApiError.badRequest(`Invalid filter "${text}": only "and" joins clauses here`);
      i++;
    }
  }
  return clauses;
}

/** The value at a dotted path; for maps (config) the rest of the path is one key. */
function lookup(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  const parts = path.split(".");
  for (let i = 0; i < parts.length; i++) {
    if (cur === null || typeof cur !== "object") return undefined;
    const rec = cur as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(rec, parts[i])) {
      cur = rec[parts[i]];
      continue;
    }
    const rest = parts.slice(i).join(".");
    return Object.prototype.hasOwnProperty.call(rec, rest) ? rec[rest] : undefined;
  }
  return cur;
}

export function matches(obj: unknown, clauses: Clause[]): boolean {
  return clauses.every((c) => {
    const v = lookup(obj, c.path);
    const eq = v !== undefined && v !== null && String(v).toLowerCase() === c.value.toLowerCase();
    const r = c.op === "eq" ? eq : !eq;
    return c.not ? !r : r;
  });
}
