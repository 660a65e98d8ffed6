// The files of one instance, read and written directly on its rootfs on this host
// (so a stopped instance's too), with LXD's semantics (lxd/instance_file.go, 5.0):
// a read reports the entry itself (a symlink is not followed: its target is the
// answer); a write follows a final symlink inside the instance, creates a new entry
// with the given owner and mode (default: the instance's root, 0644 / 0750) and
// leaves an existing file's owner and mode alone; `append` needs an existing file;
// a directory that exists is fine; a symlink that exists with the same target is
// fine. Every path goes through resolveInRootfs (never out of the rootfs) and every
// action through the open parent directory with O_NOFOLLOW; owners are shifted
// with the instance's id map on disk.
import { constants, type Stats } from "node:fs";
import { lchown, lstat, mkdir, open, readdir, readlink, rmdir, symlink, unlink, type FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import type { IdMap } from "../drivers/driver.ts";
import { AgentError, alreadyExists, invalidArgument, notFound, preconditionFailed } from "../errors.ts";
import { absoluteTarget, hostId, instanceId } from "./paths.ts";
import { resolveInRootfs, type Resolved } from "./resolve.ts";

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

/** Chunks of a file read: well under gRPC's 4 MiB message limit. */
const READ_CHUNK = 256 << 10;
/** The longest symlink target (PATH_MAX). */
const MAX_TARGET = 4096;

export type FileType = "file" | "directory" | "symlink";

export interface FileEntry {
  type: FileType;
  /** The instance's ids (65534 for a host id outside its map). */
  uid: number;
  gid: number;
  /** Permission bits. */
  mode: number;
  size: number;
  modifiedAt: number;
  /** A directory's entry names, sorted (empty for a stat). */
  entries: string[];
  /** A symlink's target as an absolute path in the instance. */
  target: string;
  /** The path as resolved in the instance. */
  path: string;
}

export interface WriteSpec {
  path: string;
  /** "file" (also ""), "directory" or "symlink". */
  type: string;
  /** The instance's ids of a new entry (default 0). */
  uid?: number;
  gid?: number;
  /** A new entry's mode (default 0644 for a file, 0750 for a directory). */
  mode?: number;
  append?: boolean;
}

export class InstanceFiles {
  /**
   * @param rootfs the instance's rootfs on this host
   * @param idmap the id shift applied to it on disk (null: none)
   */
  constructor(
    readonly rootfs: string,
    readonly idmap: IdMap | null,
  ) {}

  /** The entry at `path` (not followed if a symlink) and, for a regular file, its bytes. */
  read(path: string, opts: { statOnly?: boolean } = {}): Promise<{ entry: FileEntry; data?: AsyncIterable<Buffer> & { destroy(): void } }> {
    return asAgentErrors(path, () => this.readEntry(path, opts));
  }

  /** Creates or writes the entry at `spec.path` from `data`; returns what is there afterwards. */
  write(spec: WriteSpec, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<FileEntry> {
    return asAgentErrors(spec.path, () => this.writeEntry(spec, data));
  }

  /** Removes a file, a symlink (not what it points to) or an empty directory. */
  delete(path: string): Promise<void> {
    return asAgentErrors(path, () => this.deleteEntry(path));
  }

  private async readEntry(path: string, opts: { statOnly?: boolean }): Promise<{ entry: FileEntry; data?: AsyncIterable<Buffer> & { destroy(): void } }> {
    const r = await resolveInRootfs(this.rootfs, path, { followFinal: false });
    let fh: FileHandle | undefined;
    try {
      if (!r.stat) throw notFound("Not Found");
      const type = fileType(r.path, r.stat);
      if (type === "symlink") {
        const target = absoluteTarget(posix.dirname(r.path), await readlink(r.at));
        return { entry: this.entry(r.path, r.stat, { target }) };
      }
      if (type === "directory") {
        const entries = opts.statOnly ? [] : (await readdir(r.at)).sort();
        return { entry: this.entry(r.path, r.stat, { entries }) };
      }
      // O_NONBLOCK: a FIFO swapped in meanwhile must not hang the read (it is refused below).
      fh = await open(r.at, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      const st = await fh.stat();
      const entry = this.entry(r.path, st);
      if (opts.statOnly) return { entry };
      const data = fh.createReadStream({ highWaterMark: READ_CHUNK });
      fh = undefined; // the stream closes it
      return { entry, data };
    } finally {
      await fh?.close();
      await r.close();
    }
  }

  private async writeEntry(spec: WriteSpec, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<FileEntry> {
    const type = spec.type || "file";
    if (type !== "file" && type !== "directory" && type !== "symlink") throw invalidArgument(`Bad file type: ${type}`);
    if (spec.mode !== undefined && (!Number.isInteger(spec.mode) || spec.mode < 0 || spec.mode > 0o7777)) throw invalidArgument(`Invalid mode ${spec.mode}`);
    const uid = hostId(spec.uid ?? 0, this.idmap, "uid");
    const gid = hostId(spec.gid ?? 0, this.idmap, "gid");
    if (type === "symlink") return this.writeSymlink(spec.path, await readTarget(data), uid, gid);
    const r = await resolveInRootfs(this.rootfs, spec.path, { followFinal: true });
    try {
      if (type === "directory") {
        for await (const _ of data) void _; // a directory has no content
        return await this.mkdir(r, spec.mode ?? 0o750, uid, gid);
      }
      return await this.writeFile(r, spec, uid, gid, data);
    } finally {
      await r.close();
    }
  }

  private async deleteEntry(path: string): Promise<void> {
    const r = await resolveInRootfs(this.rootfs, path, { followFinal: false });
    try {
      if (r.name === "") throw invalidArgument(`Cannot delete "${r.path}": it is the instance's root or a directory reached through "..", name it directly`);
      if (!r.stat) throw notFound("Not Found");
      await (r.stat.isDirectory() ? rmdir(r.at) : unlink(r.at));
    } finally {
      await r.close();
    }
  }

  private async writeFile(r: Resolved, spec: WriteSpec, uid: number, gid: number, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<FileEntry> {
    if (r.name === "" || r.stat?.isDirectory()) throw invalidArgument(`"${r.path}" is a directory`);
    let fh: FileHandle;
    if (r.stat) {
      fileType(r.path, r.stat, "file");
      fh = await open(r.at, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | (spec.append ? O_APPEND : O_TRUNC));
    } else {
      if (spec.append) throw notFound("Not Found");
      fh = await open(r.at, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    }
    try {
      if (!(await fh.stat()).isFile()) throw invalidArgument(`"${r.path}" is not a regular file`);
      if (!r.stat) {
        await fh.chown(uid, gid);
        await fh.chmod(spec.mode ?? 0o644);
      }
      for await (const chunk of data) {
        for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      return this.entry(r.path, await fh.stat());
    } finally {
      await fh.close();
    }
  }

  private async mkdir(r: Resolved, mode: number, uid: number, gid: number): Promise<FileEntry> {
    if (r.stat && !r.stat.isDirectory()) throw alreadyExists(`"${r.path}" exists and is not a directory`);
    if (!r.stat) {
      await mkdir(r.at, 0o700);
      const fh = await open(r.at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        await fh.chown(uid, gid);
        await fh.chmod(mode);
      } finally {
        await fh.close();
      }
    }
    return this.entry(r.path, await lstat(r.at), { entries: [] });
  }

  private async writeSymlink(path: string, target: string, uid: number, gid: number): Promise<FileEntry> {
    const r = await resolveInRootfs(this.rootfs, path, { followFinal: false });
    try {
      if (r.name === "") throw alreadyExists(`"${r.path}" already exists`);
      if (r.stat) {
        if (!r.stat.isSymbolicLink() || (await readlink(r.at)) !== target) throw alreadyExists(`"${r.path}" already exists`);
      } else {
        await symlink(target, r.at);
        await lchown(r.at, uid, gid);
      }
      const st = await lstat(r.at);
      return this.entry(r.path, st, { target: absoluteTarget(posix.dirname(r.path), target) });
    } finally {
      await r.close();
    }
  }

  private entry(path: string, st: Stats, extra: { entries?: string[]; target?: string } = {}): FileEntry {
    return {
      type: fileType(path, st),
      uid: instanceId(st.uid, this.idmap),
      gid: instanceId(st.gid, this.idmap),
      mode: st.mode & 0o777,
      size: st.size,
      modifiedAt: Math.floor(st.mtimeMs),
      entries: extra.entries ?? [],
      target: extra.target ?? "",
      path,
    };
  }
}

/** The entry's type; devices, FIFOs and sockets are refused (and anything but `want`, when given). */
function fileType(path: string, st: Stats, want?: FileType): FileType {
  const t: FileType | undefined = st.isFile() ? "file" : st.isDirectory() ? "directory" : st.isSymbolicLink() ? "symlink" : undefined;
  if (!t || (want && t !== want)) throw invalidArgument(`"${path}" is not a ${want === "file" ? "regular file" : "regular file, directory or symbolic link"}`);
  return t;
}

async function readTarget(data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of data) {
    size += chunk.length;
    if (size > MAX_TARGET) throw invalidArgument(`A symbolic link's target is at most ${MAX_TARGET} bytes`);
    parts.push(Buffer.from(chunk));
  }
  const target = Buffer.concat(parts).toString("utf8");
  if (target === "" || target.includes("\0")) throw invalidArgument("A symbolic link needs a target (the request body), without NUL bytes");
  return target;
}

/** The file system's refusals as agent errors naming the instance's path (never the host's). */
async function asAgentErrors<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AgentError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const p = JSON.stringify(path);
    switch (code) {
      case "ENOENT":
        throw notFound("Not Found");
      case "EEXIST":
        throw alreadyExists(`${p} already exists`);
      case "EISDIR":
        throw invalidArgument(`${p} is a directory`);
      case "ENOTDIR":
        throw invalidArgument(`Not a directory: ${p}`);
      case "ENOTEMPTY":
        throw invalidArgument(`Directory not empty: ${p}`);
      case "ELOOP":
      case "ENXIO":
        throw invalidArgument(`${p} changed while it was used (a symbolic link or a FIFO appeared): try again`);
      case "ENOSPC":
      case "EDQUOT":
        throw preconditionFailed(`No space left on the instance's storage for ${p}`);
      case "EROFS":
        throw preconditionFailed(`The instance's storage is read-only (${p})`);
      default:
        throw err;
    }
  }
}
