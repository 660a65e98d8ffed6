// Pure helpers of the file API (no I/O): an instance path as components, the id
// shift between the instance's ids and the host's, and a symlink's target as the
// absolute path LXD reports.
import type { IdMap } from "../drivers/driver.ts";
import { invalidArgument } from "../errors.ts";

/** The id the kernel shows for a host id outside an instance's map (overflowuid). */
export const OVERFLOW_ID = 65534;

/** At most this many symlinks on one path (the kernel's limit). */
export const MAX_SYMLINKS = 40;

/**
 * A path in the instance as its components, "." and empty ones dropped, ".." kept (the
 * resolver applies it to the directory it reached, as the kernel does). A relative
 * path is read from the instance's root, as LXD does.
 */
export function pathComponents(path: string): string[] {
  if (path === "") throw invalidArgument("Missing path argument");
  if (path.includes("\0")) throw invalidArgument("Invalid path: it contains a NUL byte");
  return path.split("/").filter((c) => c !== "" && c !== ".");
}

function range(map: IdMap | null): { base: number; size: number } {
  return map ? { base: map.hostBase, size: map.size } : { base: 0, size: 2 ** 32 - 1 };
}

/** The host id of an instance's id; one outside the instance's map is refused. */
export function hostId(id: number, map: IdMap | null, what: "uid" | "gid"): number {
  const { base, size } = range(map);
  if (!Number.isInteger(id) || id < 0 || id >= size) {
    throw invalidArgument(`Invalid ${what} ${id}: the instance's ids are 0 to ${size - 1}`);
  }
  return base + id;
}

/** The instance's id of a host id; one outside its map shows as 65534, as the kernel shows it. */
export function instanceId(id: number, map: IdMap | null): number {
  const { base, size } = range(map);
  return id >= base && id < base + size ? id - base : OVERFLOW_ID;
}

/**
 * A symlink's target as an absolute path in the instance (what LXD's GET returns):
 * a relative target is read from the link's directory; ".." stops at the root, as
 * in the instance. Text only: nothing is looked up.
 */
export function absoluteTarget(linkDir: string, target: string): string {
  const out: string[] = [];
  const parts = target.startsWith("/") ? target.split("/") : [...linkDir.split("/"), ...target.split("/")];
  for (const c of parts) {
    if (c === "" || c === ".") continue;
    if (c === "..") out.pop();
    else out.push(c);
  }
  return "/" + out.join("/");
}
