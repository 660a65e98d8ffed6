// LXD's file API headers (pure): what a POST /1.0/instances/NAME/files says in
// X-LXD-uid/gid/mode/type/write (shared.ParseLXDFileHeaders in LXD 5.0: an id that
// is absent, not a number or negative means "the default"; a mode is octal with a
// leading 0, as the client sends it, and only its permission bits count; type
// `file` and write `overwrite` by default), and the headers a GET/HEAD answers with.
import type { FileInfo, WriteFileHeader } from "../../../../proto/gen/member.ts";
import { ApiError } from "../response.ts";

type Headers = Record<string, string | string[] | undefined>;

const header = (h: Headers, name: string): string => {
  const v = h[name.toLowerCase()];
  return (Array.isArray(v) ? v[0] : v)?.trim() ?? "";
};

function id(text: string): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 0 && n <= 0xffff_ffff ? n : undefined;
}

function mode(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  if (text.length > 1 && text.startsWith("0")) {
    if (!/^[0-7]+$/.test(text)) throw ApiError.badRequest(`Invalid X-LXD-mode "${text}": octal digits expected after a leading 0`);
    return parseInt(text, 8) & 0o777;
  }
  return Number(text) & 0o777;
}

/** The write a POST asks for (without the instance and path). */
export function writeRequest(h: Headers): Omit<WriteFileHeader, "name" | "path"> {
  const type = header(h, "X-LXD-type") || "file";
  if (!["file", "directory", "symlink"].includes(type)) throw ApiError.badRequest(`Bad file type: ${type}`);
  const write = header(h, "X-LXD-write") || "overwrite";
  if (write !== "overwrite" && write !== "append") throw ApiError.badRequest(`Bad file write mode: ${write}`);
  return { type, uid: id(header(h, "X-LXD-uid")), gid: id(header(h, "X-LXD-gid")), mode: mode(header(h, "X-LXD-mode")), append: write === "append" };
}

/** The headers of a GET/HEAD answer (X-LXD-modified as Go's time.Time.String() in UTC). */
export function fileHeaders(info: FileInfo): Record<string, string> {
  return {
    "X-LXD-uid": String(info.uid),
    "X-LXD-gid": String(info.gid),
    "X-LXD-mode": info.mode.toString(8).padStart(4, "0"),
    "X-LXD-modified": goTime(info.modifiedAt),
    "X-LXD-type": info.type,
  };
}

/** Go's time.Time.String() of a UTC time: "2023-11-14 22:13:20.5 +0000 UTC". */
export function goTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  const frac = iso.slice(20, 23).replace(/0+$/, "");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ""} +0000 UTC`;
}

/** `?path=`: LXD's words when it is missing; a relative path is read from the instance's root (as LXD does). */
export function requestPath(path: string): string {
  if (path === "") throw ApiError.badRequest("Missing path argument");
  if (path.includes("\0")) throw ApiError.badRequest("Invalid path: it contains a NUL byte");
  return path.startsWith("/") ? path : `/${path}`;
}
