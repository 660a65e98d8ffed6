// Shifts the ownership of a rootfs between id maps: from "as in the image" (null:
// container uid = host uid) to the unprivileged map (container uid 0 = host uid
// 1000000), or back when an instance becomes privileged. Ids outside the source
// range are left alone. chown clears setuid/setgid bits, so modes are restored;
// hard-linked inodes are shifted once. POSIX ACLs and file capabilities (xattrs
// carrying a root uid) are not rewritten yet.
import { chmod, lchown, lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { IdMap } from "../driver.ts";

function mapper(from: IdMap | null, to: IdMap | null): (id: number) => number {
  const fromBase = from?.hostBase ?? 0;
  const toBase = to?.hostBase ?? 0;
  const size = Math.min(from?.size ?? 65536, to?.size ?? 65536);
  return (id) => (id >= fromBase && id < fromBase + size ? id - fromBase + toBase : id);
}

/** Returns how many entries changed owner. */
export async function shiftTree(root: string, from: IdMap | null, to: IdMap | null): Promise<number> {
  if ((from?.hostBase ?? 0) === (to?.hostBase ?? 0)) return 0;
  const map = mapper(from, to);
  const seen = new Set<string>();
  let changed = 0;
  const visit = async (path: string): Promise<void> => {
    const st = await lstat(path);
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    const uid = map(st.uid);
    const gid = map(st.gid);
    if (uid !== st.uid || gid !== st.gid) {
      await lchown(path, uid, gid);
      changed++;
      if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) await chmod(path, st.mode & 0o7777);
    }
    if (st.isDirectory()) {
      for (const name of await readdir(path)) await visit(join(path, name));
    }
  };
  await visit(root);
  return changed;
}
