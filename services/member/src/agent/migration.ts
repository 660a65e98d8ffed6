// An instance leaving or arriving on this member: SendInstance's stream (whole, a
// pre-copy, or the delta after one), ReceiveInstance (whole or delta) and the
// staging of a pre-copy, and AdoptInstance on a shared pool. The member
// (member.ts) lends what this needs through MigrationHost; the formats are in
// ../migration/ (instance-tar.ts, manifest.ts, precopy.ts).
import { rm, stat } from "node:fs/promises";
import type { InstancePaths, InstanceRecord } from "../drivers/driver.ts";
import { alreadyExists, checkInstanceName, invalidArgument, notFound, preconditionFailed } from "../errors.ts";
import { packInstance, unpackInstance, type InstanceStreamItem } from "../migration/instance-tar.ts";
import { changedSince, typedPaths, walkManifest } from "../migration/manifest.ts";
import { applyPathList, checkPrecopyId, PrecopyLedger } from "../migration/precopy.ts";
import type { StoragePool } from "../storage/pool.ts";
import { readRecord } from "./instance-record.ts";
import type { InstanceView } from "./member.ts";

export interface MigrationHost {
  /** This member's name. */
  member: string;
  load(name: string): Promise<{ record: InstanceRecord; pool: StoragePool; paths: InstancePaths }>;
  isStopped(name: string): Promise<boolean>;
  /** Runs `fn` as the only operation on instance `name` at the time. */
  locked<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** A pool by name ("" for the default); NOT_FOUND when unknown. */
  pool(name: string): StoragePool;
  /** Whether this member holds instance `name`. */
  holds(name: string): boolean;
  /** Records that this member now holds `name` on `pool`. */
  holdNow(name: string, pool: string): void;
  view(name: string): Promise<InstanceView>;
}

/** A shared pool's owner marker stays with the pool, never travels (see StoragePool.owner). */
const OWNER_MARKER: ReadonlySet<string> = new Set(["owner"]);
/** Paths per message of a delta pass's path list (well under gRPC's 4 MiB message limit). */
const PATHS_PER_MESSAGE = 2000;

export class InstanceMigration {
  /** Pre-copies this member sent, for their delta passes (../migration/precopy.ts). */
  private readonly precopies = new PrecopyLedger();

  constructor(private readonly host: MigrationHost) {}

  /**
   * The stream SendInstance sends: a stopped instance's directory as tar, then the
   * checksum. With `precopyId` (a pre-copy pass) the instance may be running; with
   * `sincePrecopyId` (the delta pass) only what changed since that pre-copy, after
   * the list of every path.
   */
  async *send(name: string, opts: { precopyId?: string; sincePrecopyId?: string } = {}): AsyncGenerator<InstanceStreamItem> {
    const { pool, paths } = await this.host.load(name);
    if (opts.precopyId) {
      checkPrecopyId(opts.precopyId);
      this.precopies.record(opts.precopyId, name, await walkManifest(paths.dir, OWNER_MARKER));
      yield* packInstance(pool.containersDir, name, { live: true });
      return;
    }
    if (!(await this.host.isStopped(name))) throw preconditionFailed("The instance must be stopped to be moved");
    if (!opts.sincePrecopyId) {
      yield* packInstance(pool.containersDir, name);
      return;
    }
    const before = this.precopies.recall(opts.sincePrecopyId, name);
    const { manifest } = await walkManifest(paths.dir, OWNER_MARKER);
    const list = typedPaths(manifest);
    for (let i = 0; i < list.length; i += PATHS_PER_MESSAGE) yield { kind: "paths", entries: list.slice(i, i + PATHS_PER_MESSAGE) };
    yield* packInstance(pool.containersDir, name, { only: changedSince(before, manifest) });
    this.precopies.forget(opts.sincePrecopyId);
  }

  /**
   * Receives a send() stream into `poolName`; the instance appears only when complete
   * and verified. With `precopyId`, the stream is the delta over that staged pre-copy.
   */
  async receive(name: string, poolName: string, items: AsyncIterable<InstanceStreamItem>, opts: { precopyId?: string } = {}): Promise<InstanceView> {
    checkInstanceName(name);
    if (opts.precopyId) checkPrecopyId(opts.precopyId);
    return this.host.locked(name, async () => {
      if (this.host.holds(name)) throw alreadyExists(`Instance "${name}" already exists on member "${this.host.member}"`);
      const pool = this.host.pool(poolName);
      if (await pool.exists(name)) throw alreadyExists(`Instance "${name}" already exists in pool "${pool.name}"`);
      const staging = opts.precopyId ? await pool.precopyStaging(name, opts.precopyId, false) : await pool.staging(name);
      if (opts.precopyId && !(await exists(staging))) throw preconditionFailed(`No staged pre-copy "${opts.precopyId}" of instance "${name}" on member "${this.host.member}": send it in full`);
      try {
        await unpackInstance(opts.precopyId ? await applyPathList(staging, items) : items, staging);
        const record = await readRecord(staging).catch(() => {
          throw invalidArgument("The received instance has no valid instance.json");
        });
        if (record.name !== name) throw invalidArgument(`The received instance is "${record.name}", not "${name}"`);
        await pool.commit(staging, name);
      } catch (err) {
        await rm(staging, { recursive: true, force: true });
        throw err;
      }
      await pool.takeOwnership(name);
      this.host.holdNow(name, pool.name);
      return this.host.view(name);
    });
  }

  /** The pre-copy pass of a move: stages the stream for a later delta pass (receive with the same id); no instance appears. */
  async stagePrecopy(name: string, poolName: string, precopyId: string, items: AsyncIterable<InstanceStreamItem>): Promise<void> {
    checkInstanceName(name);
    checkPrecopyId(precopyId);
    await this.host.locked(name, async () => {
      if (this.host.holds(name)) throw alreadyExists(`Instance "${name}" already exists on member "${this.host.member}"`);
      const staging = await this.host.pool(poolName).precopyStaging(name, precopyId, true);
      try {
        await unpackInstance(items, staging);
      } catch (err) {
        await rm(staging, { recursive: true, force: true });
        throw err;
      }
    });
  }

  /**
   * Relocation on a shared pool: this member becomes the owner of an instance whose
   * directory is already there. The caller (the gateway) has stopped it on its
   * previous member and records the new location in the database.
   */
  async adopt(name: string, poolName: string): Promise<InstanceView> {
    checkInstanceName(name);
    return this.host.locked(name, async () => {
      const pool = this.host.pool(poolName);
      if (!pool.remote) throw preconditionFailed(`Pool "${pool.name}" is not shared: move the instance with SendInstance/ReceiveInstance`);
      if (!(await pool.exists(name))) throw notFound(`Instance "${name}" not found in pool "${pool.name}"`);
      await readRecord(pool.instanceDir(name));
      await pool.takeOwnership(name);
      this.host.holdNow(name, pool.name);
      return this.host.view(name);
    });
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
