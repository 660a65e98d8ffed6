// What an instance directory holds, entry by entry, so a second pass of a move can
// send only what changed since the first (see precopy.ts). Change is judged like
// git's index does: type, size, mode, owners, inode, mtime and ctime (ctime cannot
// be set from user space, so any write, chmod, chown or rename moves it); an entry
// whose ctime was within the walk's racy margin of its start is "racily clean" (a
// write in the same timestamp tick right after the walk would not move it) and is
// sent again.
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { setImmediate } from "node:timers/promises";

export type EntryType = "d" | "f" | "l" | "o";

export interface ManifestEntry {
  type: EntryType;
  size: bigint;
  mode: bigint;
  uid: bigint;
  gid: bigint;
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Relative path (no leading "/", the directory itself excluded) → entry. */
export type Manifest = Map<string, ManifestEntry>;

export interface Walk {
  manifest: Manifest;
  /** Wall clock when the walk began, in ns. */
  startedNs: bigint;
  /** Entries whose ctime is this close to startedNs are racily clean. */
  racyNs: bigint;
}

/**
 * Linux stamps ctime from the coarse clock (one tick: 1–10 ms) on file systems with
 * ns timestamps; 50 ms covers it and the ms resolution of our own clock. A file
 * system with whole-second timestamps (every ctime a round second) needs 2 s.
 */
export const RACY_NS = 50_000_000n;
export const RACY_COARSE_NS = 2_000_000_000n;

/**
 * Walks `dir` without following symlinks; `skip` leaves out top-level names (e.g. a
 * shared pool's owner marker). lstat runs synchronously, a directory at a time:
 * queued on libuv's threadpool behind the Raft log's fsyncs, one await per entry
 * made a 300-entry rootfs take 300 ms on a busy member.
 */
export async function walkManifest(dir: string, skip: ReadonlySet<string> = new Set()): Promise<Walk> {
  const startedNs = BigInt(Date.now()) * 1_000_000n;
  const manifest: Manifest = new Map();
  let subSecond = false;
  const visit = async (rel: string): Promise<void> => {
    const names = readdirSync(rel ? join(dir, rel) : dir).sort();
    const dirs: string[] = [];
    for (const name of names) {
      if (!rel && skip.has(name)) continue;
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, path), { bigint: true, throwIfNoEntry: false }); // removed meanwhile: absent
      if (!st) continue;
      const type: EntryType = st.isDirectory() ? "d" : st.isFile() ? "f" : st.isSymbolicLink() ? "l" : "o";
      manifest.set(path, { type, size: st.size, mode: st.mode, uid: st.uid, gid: st.gid, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs });
      if (st.ctimeNs % 1_000_000_000n !== 0n) subSecond = true;
      if (type === "d") dirs.push(path);
    }
    for (const d of dirs) {
      await setImmediate(); // let the member's other work (Raft heartbeats) run between directories
      await visit(d);
    }
  };
  await visit("");
  return { manifest: inWalkOrder(manifest), startedNs, racyNs: subSecond ? RACY_NS : RACY_COARSE_NS };
}

/** Sorted so that every directory comes right before its subtree (the order tar and removals() need). */
function inWalkOrder(m: Manifest): Manifest {
  return new Map([...m].sort(([a], [b]) => compareSegments(a, b)));
}

function compareSegments(a: string, b: string): number {
  const x = a.split("/");
  const y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
}

function same(a: ManifestEntry, b: ManifestEntry): boolean {
  return a.type === b.type && a.size === b.size && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.ino === b.ino && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/**
 * The entries of `after` to send again: new, changed, or racily clean in `before`.
 * In `after`'s order (a walk lists a directory before its contents, as tar needs).
 */
export function changedSince(before: Walk, after: Manifest): string[] {
  const out: string[] = [];
  for (const [path, entry] of after) {
    const old = before.manifest.get(path);
    if (!old || !same(old, entry) || old.ctimeNs >= before.startedNs - before.racyNs) out.push(path);
  }
  return out;
}

/** The delta pass's path list: "<type><path>" for every entry. */
export function typedPaths(m: Manifest): string[] {
  return [...m].map(([path, e]) => `${e.type}${path}`);
}

/**
 * What a staged copy must lose to match the source's typed path list: entries it
 * has that are not listed, or listed with another type. Shallowest first, and
 * nothing below a path already removed (its removal takes the subtree).
 */
export function removals(staged: Manifest, wanted: ReadonlySet<string>): string[] {
  const out: string[] = [];
  let last: string | undefined;
  for (const [path, e] of staged) {
    if (last !== undefined && path.startsWith(`${last}/`)) continue;
    if (!wanted.has(`${e.type}${path}`)) {
      out.push(path);
      last = path;
    }
  }
  return out;
}
