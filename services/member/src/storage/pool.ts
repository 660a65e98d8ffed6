// Storage pools: where instance directories (rootfs + instance.json) live.
// `dir` is a directory local to one member; `shared` is a path every member mounts
// (NFS, CephFS, ...), remote: true, so an instance changes member without a copy:
// only the owner marker (and the database record) changes.
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, readFile, rename, rm, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { alreadyExists } from "../errors.ts";

export type PoolDriver = "dir" | "shared";

export interface PoolConfig {
  name: string;
  driver: PoolDriver;
  /** The directory (member-specific for `dir`, the common mount point for `shared`). */
  source: string;
}

export interface PoolUsage {
  total: number;
  used: number;
}

export class StoragePool {
  readonly name: string;
  readonly driver: PoolDriver;
  readonly source: string;

  /** @param member this member's name: the owner it writes, and the tag of its staging directories. */
  constructor(cfg: PoolConfig, readonly member: string) {
    this.name = cfg.name;
    this.driver = cfg.driver;
    this.source = cfg.source;
  }

  /** Instances on a remote pool are reachable from every member. */
  get remote(): boolean {
    return this.driver === "shared";
  }

  get containersDir(): string {
    return join(this.source, "containers");
  }

  async init(): Promise<void> {
    await mkdir(this.containersDir, { recursive: true });
    // Unprivileged containers (host uid 1000000) must traverse to their rootfs.
    await chmod(this.source, 0o711);
    await chmod(this.containersDir, 0o711);
    for (const name of await readdir(this.containersDir)) {
      // Staging directories of receives interrupted by a crash of this member, and
      // deleted instances whose removal it interrupted.
      if (name.startsWith(`.incoming-${this.stagingTag()}`) || name.startsWith(`.deleted-${this.stagingTag()}`)) await rm(join(this.containersDir, name), { recursive: true, force: true });
    }
  }

  instanceDir(name: string): string {
    return join(this.containersDir, name);
  }

  /** Names of the instance directories present (on a shared pool: every member's). */
  async instanceNames(): Promise<string[]> {
    const names = await readdir(this.containersDir);
    return names.filter((n) => !n.startsWith(".")).sort();
  }

  async exists(name: string): Promise<boolean> {
    return (await this.instanceNames()).includes(name);
  }

  /** A fresh directory to build or receive an instance in, renamed into place by commit(). */
  async staging(name: string): Promise<string> {
    const dir = join(this.containersDir, `.incoming-${this.stagingTag()}${name}-${randomBytes(4).toString("hex")}`);
    await mkdir(dir, { mode: 0o711 });
    await chmod(dir, 0o711);
    return dir;
  }

  /**
   * The staging directory of pre-copy `id` of `name` (precopy.ts). `fresh`: created
   * anew, and every other pre-copy of the name dropped (an abandoned attempt's).
   */
  async precopyStaging(name: string, id: string, fresh: boolean): Promise<string> {
    const prefix = `.incoming-${this.stagingTag()}${name}.precopy-`;
    const dir = join(this.containersDir, `${prefix}${id}`);
    if (!fresh) return dir;
    for (const n of await readdir(this.containersDir)) if (n.startsWith(prefix)) await rm(join(this.containersDir, n), { recursive: true, force: true });
    await mkdir(dir, { mode: 0o711 });
    await chmod(dir, 0o711);
    return dir;
  }

  async commit(staging: string, name: string): Promise<void> {
    if (await this.exists(name)) throw alreadyExists(`Instance "${name}" already exists in pool "${this.name}"`);
    await rename(staging, this.instanceDir(name));
  }

  /**
   * Removes an instance's directory: renamed out of the way at once (the name is free
   * again when this resolves), its files deleted in the background; init() finishes
   * what a crash interrupted.
   */
  async remove(name: string): Promise<void> {
    const doomed = join(this.containersDir, `.deleted-${this.stagingTag()}${name}-${randomBytes(4).toString("hex")}`);
    try {
      await rename(this.instanceDir(name), doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    void rm(doomed, { recursive: true, force: true }).catch(() => undefined);
  }

  async usage(): Promise<PoolUsage> {
    const s = await statfs(this.source);
    const total = s.blocks * s.bsize;
    return { total, used: total - s.bfree * s.bsize };
  }

  /** The member that owns an instance on this pool (a `dir` pool's instances are all ours). */
  async owner(name: string): Promise<string | undefined> {
    if (!this.remote) return this.member;
    try {
      return (await readFile(join(this.instanceDir(name), "owner"), "utf8")).trim() || undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  /** Records this member as the owner (shared pools only). */
  async takeOwnership(name: string): Promise<void> {
    if (!this.remote) return;
    const file = join(this.instanceDir(name), "owner");
    await writeFile(`${file}.tmp`, this.member + "\n");
    await rename(`${file}.tmp`, file);
  }

  /** Staging names carry the pool-local tag so a member cleans only its own after a crash. */
  private stagingTag(): string {
    return `${this.member}.`;
  }
}
