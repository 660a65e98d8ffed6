// Resolves a path of an instance inside its rootfs on the host, one component at a
// time, holding each directory open and reaching the next component through that
// open directory (`/proc/self/fd/N/name`, Linux's openat without the syscall), so a
// directory a running container swaps for a symlink meanwhile cannot lead outside.
// A symlink is read and its target resolved by the same walk: an absolute target
// from the rootfs root, a relative one from the link's directory; a ".." above the
// root is refused (the request's own: INVALID_ARGUMENT; a symlink's: PERMISSION_DENIED).
// What the walk returns is the entry's open parent directory and its name: callers
// act on `at` (open/mkdir/unlink/lchown through the parent) with O_NOFOLLOW.
import { constants, type Stats } from "node:fs";
import { lstat, open, readlink, type FileHandle } from "node:fs/promises";
import { invalidArgument, notFound, permissionDenied } from "../errors.ts";
import { MAX_SYMLINKS, pathComponents } from "./paths.ts";

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;

/** An entry reached inside a rootfs: its open parent directory and its name there. */
export interface Resolved {
  /** The entry's path in the instance, as resolved ("/" for the root). */
  path: string;
  /** The directory holding the entry, open; when `name` is "", the entry itself (a directory). */
  dir: FileHandle;
  /** The entry's name in `dir`; "" when the path ended at a directory reached by the walk. */
  name: string;
  /** The entry reached through the open `dir` (not re-resolved from the rootfs). */
  at: string;
  /** lstat of the entry; undefined when it does not exist (its parent does). */
  stat: Stats | undefined;
  close(): Promise<void>;
}

export interface ResolveOptions {
  /** Follow a symlink in the last component too (writes do, reads and deletes do not, as LXD). */
  followFinal: boolean;
}

/** `name` inside the open directory `dir`. */
export const inDir = (dir: FileHandle, name: string) => `/proc/self/fd/${dir.fd}/${name || "."}`;

interface Step {
  name: string;
  /** The symlink (its path in the instance) whose target this component comes from. */
  link?: string;
}

export async function resolveInRootfs(rootfs: string, path: string, opts: ResolveOptions): Promise<Resolved> {
  const queue: Step[] = pathComponents(path).map((name) => ({ name }));
  const dirs: { fh: FileHandle; name: string }[] = [{ fh: await open(rootfs, O_RDONLY | O_DIRECTORY), name: "" }];
  const top = () => dirs[dirs.length - 1];
  const here = (name?: string) => "/" + [...dirs.slice(1).map((d) => d.name), ...(name === undefined ? [] : [name])].join("/");
  const closeFrom = async (n: number) => {
    for (const d of dirs.splice(n)) await d.fh.close().catch(() => undefined);
  };
  const done = async (name: string, stat: Stats | undefined): Promise<Resolved> => {
    const dirPath = here();
    const last = dirs.pop()!;
    await closeFrom(0);
    return {
      path: name ? (dirPath === "/" ? `/${name}` : `${dirPath}/${name}`) : dirPath,
      dir: last.fh,
      name,
      at: inDir(last.fh, name),
      stat,
      close: () => last.fh.close().catch(() => undefined),
    };
  };
  let links = 0;
  try {
    while (queue.length) {
      const { name, link } = queue.shift()!;
      const last = queue.length === 0;
      if (name === "..") {
        if (dirs.length === 1) {
          if (link) throw permissionDenied(`The symbolic link "${link}" leads out of the instance's root filesystem`);
          throw invalidArgument(`Invalid path "${path}": ".." above the instance's root`);
        }
        await closeFrom(dirs.length - 1);
        continue;
      }
      const at = inDir(top().fh, name);
      const st = await lstatIfExists(at);
      if (!st) {
        if (last) return await done(name, undefined);
        throw notFound("Not Found");
      }
      if (st.isSymbolicLink() && (!last || opts.followFinal)) {
        if (++links > MAX_SYMLINKS) throw invalidArgument(`Too many levels of symbolic links in "${path}"`);
        const target = await readlink(at);
        const from = here(name);
        if (target.startsWith("/")) await closeFrom(1);
        queue.unshift(...pathComponents(target).map((n) => ({ name: n, link: from })));
        continue;
      }
      if (last) return await done(name, st);
      if (!st.isDirectory()) throw invalidArgument(`Not a directory: "${here(name)}"`);
      dirs.push({ fh: await open(at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), name });
    }
    // The walk ended at a directory: the root, after "..", or a symlink's target.
    return await done("", await top().fh.stat());
  } catch (err) {
    await closeFrom(0);
    throw err;
  }
}

async function lstatIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
