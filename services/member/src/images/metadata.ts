// metadata.yaml of LXD's unified image tarball: architecture, creation_date
// (seconds since the epoch), properties (description, os, release, ...) and
// templates. The files we meet are small and flat, so this reads the YAML subset
// they use (nested maps by indentation, plain/single/double-quoted scalars, comments)
// rather than adding a YAML dependency. Lists and multi-line scalars are skipped.
import { invalidArgument } from "../errors.ts";

export interface ImageMetadata {
  architecture: string;
  /** seconds since the epoch (0 when absent). */
  creationDate: number;
  properties: Record<string, string>;
  /** Template file paths (keys of `templates:`); not applied yet. */
  templates: string[];
}

type YamlMap = { [key: string]: string | YamlMap };

/** Parses the map-only YAML subset described above. */
export function parseSimpleYaml(text: string): YamlMap {
  const root: YamlMap = {};
  const stack: { indent: number; map: YamlMap }[] = [{ indent: -1, map: root }];
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*(#.*)?$/.test(raw) || /^\s*-/.test(raw) || raw.startsWith("---")) continue;
    const indent = raw.length - raw.trimStart().length;
    const m = /^(\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^:#]+?)\s*:(?:\s+(.*))?$/.exec(raw);
    if (!m) continue;
    const key = unquote(m[2]);
    const rest = stripComment(m[3] ?? "").trim();
    while (stack.length > 1 && stack[stack.length - 1].indent >= indent) stack.pop();
    const parent = stack[stack.length - 1].map;
    if (rest === "" || rest === "|" || rest === ">") {
      const child: YamlMap = {};
      parent[key] = child;
      stack.push({ indent, map: child });
    } else {
      parent[key] = unquote(rest);
    }
  }
  return root;
}

function stripComment(v: string): string {
  if (v.startsWith('"') || v.startsWith("'")) return v;
  const i = v.search(/\s#/);
  return i >= 0 ? v.slice(0, i) : v;
}

function unquote(v: string): string {
  v = v.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\(["\\nt])/g, (_, c: string) => ({ n: "\n", t: "\t" })[c] ?? c);
  }
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1).replace(/''/g, "'");
  return v;
}

export function parseImageMetadata(text: string): ImageMetadata {
  const y = parseSimpleYaml(text);
  const architecture = typeof y.architecture === "string" ? y.architecture : "";
  if (!architecture) throw invalidArgument("Invalid image: metadata.yaml has no architecture");
  const cd = typeof y.creation_date === "string" ? Number(y.creation_date) : 0;
  if (!Number.isFinite(cd) || cd < 0) throw invalidArgument("Invalid image: metadata.yaml creation_date is not a number");
  const properties: Record<string, string> = {};
  if (typeof y.properties === "object") {
    for (const [k, v] of Object.entries(y.properties)) if (typeof v === "string") properties[k] = v;
  }
  const templates = typeof y.templates === "object" ? Object.keys(y.templates) : [];
  return { architecture: normalizeArchitecture(architecture), creationDate: Math.floor(cd), properties, templates };
}

/** LXD's architecture names for the aliases images use. */
export function normalizeArchitecture(a: string): string {
  const aliases: Record<string, string> = {
    amd64: "x86_64",
    x64: "x86_64",
    arm64: "aarch64",
    armhf: "armv7l",
    i386: "i686",
    ppc64el: "ppc64le",
  };
  return aliases[a] ?? a;
}

/** This host's architecture as LXD names it. */
export function hostArchitecture(): string {
  const map: Record<string, string> = { x64: "x86_64", arm64: "aarch64", arm: "armv7l", ia32: "i686", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };
  return map[process.arch] ?? process.arch;
}
