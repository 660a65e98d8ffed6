// The agent's core, independent of gRPC: instances (records in pools, run by the
// driver), the image store and the pools of one member. service.ts adapts it to
// the MemberAgent gRPC service; tests may drive it directly.
//
// Layout under the agent's directory:
//   images/<fingerprint>[.json]       the content-addressed image store
//   pools/default/containers/<name>/  the default `dir` pool (instance.json + rootfs/)
//   pools/<name>/                     other `dir` pools of the cluster (EnsurePool)
//   pools.json                        the pools EnsurePool added (re-opened at start)
//   lxc/<name>/{config,lxc.log}       the lxc driver's runtime files (lxcpath)
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import {
  STATUS_CODES,
  wantedIdMap,
  type ExecOptions,
  type ExecProcess,
  type InstanceDriver,
  type InstancePaths,
  type InstanceRecord,
  type InstanceStatusWord,
  type RuntimeState,
} from "../drivers/driver.ts";
import { haltSignal } from "../drivers/lxc/config.ts";
import {
  alreadyExists,
  checkInstanceName,
  invalidArgument,
  notFound,
  preconditionFailed,
} from "../errors.ts";
import { InstanceFiles } from "../files/instance-files.ts";
import { mapLimit } from "../map-limit.ts";
import { ImageStore, type ImageEntry } from "../images/image-store.ts";
import type { InstanceStreamItem } from "../migration/instance-tar.ts";
import { readRecord, validateConfig, writeRecord } from "./instance-record.ts";
import { InstanceMigration } from "./migration.ts";
import { hostResources, supportedArchitectures, type HostResources } from "../resources/resources.ts";
import { StoragePool, type PoolConfig, type PoolUsage } from "../storage/pool.ts";

export interface MemberOptions {
  /** This member's name (the cluster member name). */
  name: string;
  /** The agent's state directory. */
  dir: string;
  driver: InstanceDriver;
  /** Default: one `dir` pool "default" at <dir>/pools/default. */
  pools?: PoolConfig[];
  defaultPool?: string;
  /** Default clean-stop budget (ms) when a request gives 0. */
  defaultStopTimeoutMs?: number;
}

export interface InstanceView {
  record: InstanceRecord;
  pool: StoragePool;
  status: InstanceStatusWord;
  statusCode: number;
}

/** A listed instance; `state` when the listing asked for it. */
export interface ListedView extends InstanceView {
  state?: RuntimeState;
}

export interface ListedStatus {
  name: string;
  status: InstanceStatusWord;
  statusCode: number;
}

/** Instance records read at once by a listing (files in the page cache; bounded so thousands do not flood the threadpool queue). */
const LIST_READ_CONCURRENCY = 16;

export interface CreateRequest {
  name: string;
  imageFingerprint: string;
  config?: Record<string, string>;
  devices?: Record<string, Record<string, string>>;
  pool?: string;
  createdAt?: number;
}

export interface HeartbeatSummary {
  member: string;
  driver: string;
  driverVersion: string;
  instanceCount: number;
  runningCount: number;
  imageCount: number;
  fingerprints: string[];
  resources: HostResources;
  startedAt: number;
}

export class Member {
  readonly name: string;
  readonly dir: string;
  readonly driver: InstanceDriver;
  readonly images: ImageStore;
  readonly pools = new Map<string, StoragePool>();
  readonly defaultPool: string;
  readonly startedAt = Date.now();
  private readonly defaultStopTimeoutMs: number;
  /** The instances this member owns: name -> pool name. */
  private readonly index = new Map<string, string>();
  /** Per-instance operation chains: one operation at a time per instance. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly migration: InstanceMigration;
  /** Instances this agent started and has not stopped: one gone from the driver's running set stopped by itself. */
  private readonly expectedRunning = new Set<string>();

  constructor(opts: MemberOptions) {
    this.name = opts.name;
    this.dir = opts.dir;
    this.driver = opts.driver;
    this.images = new ImageStore(join(opts.dir, "images"));
    const pools = opts.pools ?? [{ name: "default", driver: "dir", source: join(opts.dir, "pools", "default") }];
    for (const p of pools) this.pools.set(p.name, new StoragePool(p, opts.name));
    this.defaultPool = opts.defaultPool ?? pools[0].name;
    this.defaultStopTimeoutMs = opts.defaultStopTimeoutMs ?? 30_000;
    this.migration = new InstanceMigration({
      member: this.name,
      load: (name) => this.load(name),
      isStopped: async (name) => {
        const { record, paths } = await this.load(name);
        return (await this.runtime(record, paths)).status === "Stopped";
      },
      locked: (name, fn) => this.locked(name, fn),
      pool: (name) => this.pool(name || this.defaultPool),
      holds: (name) => this.index.has(name),
      holdNow: (name, pool) => void this.index.set(name, pool),
      view: (name) => this.view(name),
    });
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // Unprivileged containers (host uid 1000000) traverse it to reach their rootfs.
    await chmod(this.dir, 0o711);
    await this.images.init();
    for (const p of await this.addedPools()) {
      if (!this.pools.has(p.name)) this.pools.set(p.name, new StoragePool(p, this.name));
    }
    for (const pool of this.pools.values()) await this.openPool(pool);
    for (const name of await this.driver.runningNames([...this.index.keys()])) this.expectedRunning.add(name);
  }

  // ---- pools ----

  /** Makes a cluster pool known here (see EnsurePool in proto/member.proto). */
  async ensurePool(spec: PoolConfig): Promise<StoragePool> {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(spec.name) || spec.name.length > 63) throw invalidArgument(`Invalid storage pool name "${spec.name}"`);
    if (spec.driver !== "dir" && spec.driver !== "shared") throw invalidArgument(`Unknown storage pool driver "${spec.driver}" (dir or shared)`);
    if (spec.source !== "" && !isAbsolute(spec.source)) throw invalidArgument(`Storage pool source must be an absolute path, not "${spec.source}"`);
    if (spec.driver === "shared" && spec.source === "") throw invalidArgument(`A shared storage pool needs a source (the path every member mounts)`);
    const source = spec.source || join(this.dir, "pools", spec.name);
    return this.locked(`pool:${spec.name}`, async () => {
      const known = this.pools.get(spec.name);
      if (known && known.driver === spec.driver && known.source === source) return known;
      if (known && [...this.index.values()].includes(spec.name)) {
        throw preconditionFailed(`Storage pool "${spec.name}" is ${known.driver} at ${known.source} on member "${this.name}", which has instances on it`);
      }
      const pool = new StoragePool({ name: spec.name, driver: spec.driver, source }, this.name);
      await this.openPool(pool);
      this.pools.set(pool.name, pool);
      const added = (await this.addedPools()).filter((p) => p.name !== pool.name);
      const file = join(this.dir, "pools.json");
      await writeFile(`${file}.tmp`, JSON.stringify([...added, { name: pool.name, driver: pool.driver, source: pool.source }], null, 2) + "\n");
      await rename(`${file}.tmp`, file);
      return pool;
    });
  }

  private async openPool(pool: StoragePool): Promise<void> {
    await pool.init();
    for (const name of await pool.instanceNames()) {
      if ((await pool.owner(name)) === this.name) this.index.set(name, pool.name);
    }
  }

  private async addedPools(): Promise<PoolConfig[]> {
    try {
      return JSON.parse(await readFile(join(this.dir, "pools.json"), "utf8")) as PoolConfig[];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  }

  // ---- instances ----

  async create(req: CreateRequest): Promise<InstanceView> {
    checkInstanceName(req.name);
    const config = { ...(req.config ?? {}) };
    validateConfig(config);
    return this.locked(req.name, async () => {
      if (this.index.has(req.name)) throw alreadyExists(`Instance "${req.name}" already exists on member "${this.name}"`);
      const pool = this.pool(req.pool || this.defaultPool);
      if (await pool.exists(req.name)) throw alreadyExists(`Instance "${req.name}" already exists in pool "${pool.name}"`);
      const image = await this.images.require(req.imageFingerprint);
      this.checkArchitecture(image);
      const staging = await pool.staging(req.name);
      try {
        const record: InstanceRecord = {
          name: req.name,
          type: "container",
          architecture: image.architecture,
          imageFingerprint: image.fingerprint,
          imageProperties: { ...image.properties },
          config,
          devices: req.devices ?? {},
          createdAt: req.createdAt ?? Date.now(),
          idmap: null,
        };
        haltSignal(record); // refuses a bad stop_signal property now rather than at start
        if (this.driver.needsRootfs) {
          await this.images.unpack(image.fingerprint, staging);
          record.idmap = await this.driver.prepareRootfs(record, { dir: staging, rootfs: join(staging, "rootfs") });
        }
        await writeRecord(staging, record);
        await pool.commit(staging, req.name);
      } catch (err) {
        await rm(staging, { recursive: true, force: true });
        throw err;
      }
      await pool.takeOwnership(req.name);
      this.index.set(req.name, pool.name);
      return this.view(req.name);
    });
  }

  async update(name: string, config: Record<string, string>, devices: Record<string, Record<string, string>>): Promise<InstanceView> {
    validateConfig(config);
    return this.locked(name, async () => {
      const { record, paths } = await this.load(name);
      const next = { ...record, config: { ...config }, devices };
      haltSignal(next);
      await writeRecord(paths.dir, next);
      return this.view(name);
    });
  }

  async start(name: string): Promise<InstanceView> {
    return this.locked(name, async () => {
      const { record, paths } = await this.load(name);
      if ((await this.runtime(record, paths)).status !== "Stopped") throw preconditionFailed("The instance is already running");
      const want = wantedIdMap(record.config);
      if (this.driver.needsRootfs && (record.idmap?.hostBase ?? 0) !== (want?.hostBase ?? 0)) {
        // security.privileged changed since the rootfs was last shifted.
        record.idmap = await this.driver.prepareRootfs(record, paths);
        await writeRecord(paths.dir, record);
      }
      await this.driver.start(record, paths);
      this.expectedRunning.add(name);
      return this.view(name);
    });
  }

  async stop(name: string, timeoutMs = 0, force = false): Promise<{ view: InstanceView; clean: boolean; elapsedMs: number }> {
    return this.locked(name, async () => {
      const { record, paths } = await this.load(name);
      const t0 = performance.now();
      this.expectedRunning.delete(name);
      const { clean } = await this.driver.stop(record, paths, { timeoutMs: timeoutMs || this.defaultStopTimeoutMs, force });
      return { view: await this.view(name), clean, elapsedMs: Math.round(performance.now() - t0) };
    });
  }

  async restart(name: string, timeoutMs = 0, force = false): Promise<{ view: InstanceView; clean: boolean; elapsedMs: number }> {
    const stopped = await this.stop(name, timeoutMs, force);
    const view = await this.start(name);
    return { ...stopped, view };
  }

  async delete(name: string, force = false): Promise<void> {
    await this.locked(name, async () => {
      const { record, pool, paths } = await this.load(name);
      if ((await this.runtime(record, paths)).status !== "Stopped") {
        if (!force) throw preconditionFailed("The instance is currently running, stop it first");
        this.expectedRunning.delete(name);
        await this.driver.stop(record, paths, { timeoutMs: 0, force: true });
      }
      await this.driver.forget(record);
      this.expectedRunning.delete(name);
      this.index.delete(name);
      await pool.remove(name);
    });
  }

  /**
   * Instances that stopped by themselves (a poweroff inside, a crash) since the last
   * call: started by this agent, not stopped by it, not running now. Instances with an
   * operation in progress are left for the next call.
   */
  async stoppedByThemselves(): Promise<string[]> {
    const names = [...this.expectedRunning].filter((n) => !this.locks.has(n));
    if (!names.length) return [];
    const running = await this.driver.runningNames(names);
    const gone = names.filter((n) => !running.has(n) && this.expectedRunning.has(n) && !this.locks.has(n));
    for (const n of gone) this.expectedRunning.delete(n);
    return gone;
  }

  async get(name: string): Promise<InstanceView> {
    return this.view(name);
  }

  async state(name: string): Promise<RuntimeState> {
    const { record, paths } = await this.load(name);
    return this.runtime(record, paths);
  }

  /**
   * Every instance with its record and status; `withState`: with its runtime state
   * too (status from it; one whose state cannot be read is listed as Error without).
   * Records are read LIST_READ_CONCURRENCY at a time, not one await after another.
   */
  async list(opts: { withState?: boolean } = {}): Promise<ListedView[]> {
    const names = [...this.index.keys()].sort();
    const running = opts.withState ? undefined : await this.driver.runningNames(names);
    const views = await mapLimit(names, LIST_READ_CONCURRENCY, async (name): Promise<ListedView | undefined> => {
      let loaded: Awaited<ReturnType<Member["load"]>>;
      try {
        loaded = await this.load(name);
      } catch {
        return undefined; // removed or adopted by another member meanwhile
      }
      const { record, pool, paths } = loaded;
      if (running) {
        const status: InstanceStatusWord = running.has(name) ? "Running" : "Stopped";
        return { record, pool, status, statusCode: STATUS_CODES[status] };
      }
      try {
        const state = await this.runtime(record, paths);
        return { record, pool, status: state.status, statusCode: STATUS_CODES[state.status], state };
      } catch {
        return { record, pool, status: "Error", statusCode: STATUS_CODES.Error };
      }
    });
    return views.filter((v): v is ListedView => v !== undefined);
  }

  /** Every instance's name and status, without reading any record (large listings). */
  async statuses(): Promise<ListedStatus[]> {
    const names = [...this.index.keys()].sort();
    const owned = await mapLimit(names, LIST_READ_CONCURRENCY, async (name) => {
      const pool = this.pools.get(this.index.get(name) ?? "");
      if (!pool) return undefined;
      if ((await pool.owner(name)) === this.name) return name;
      this.index.delete(name); // as load(): adopted by another member through a shared pool
      return undefined;
    });
    const mine = owned.filter((n): n is string => n !== undefined);
    const running = await this.driver.runningNames(mine);
    return mine.map((name) => {
      const status: InstanceStatusWord = running.has(name) ? "Running" : "Stopped";
      return { name, status, statusCode: STATUS_CODES[status] };
    });
  }

  async exec(name: string, opts: ExecOptions): Promise<ExecProcess> {
    if (opts.command.length === 0) throw invalidArgument("Exec needs a command");
    const { record, paths } = await this.load(name);
    if ((await this.runtime(record, paths)).status !== "Running") throw preconditionFailed("Instance is not running");
    return this.driver.exec(record, paths, opts);
  }

  /** The files of an instance: its rootfs on this host, running or not (files/instance-files.ts). */
  async files(name: string): Promise<InstanceFiles> {
    const { record, paths } = await this.load(name);
    if (!this.driver.needsRootfs) throw preconditionFailed(`Instance "${name}" has no files: the ${this.driver.name} driver keeps no root filesystem`);
    return new InstanceFiles(paths.rootfs, record.idmap);
  }

  // ---- migration (migration.ts) ----

  /** SendInstance's stream (see InstanceMigration.send). */
  send(name: string, opts: { precopyId?: string; sincePrecopyId?: string } = {}): AsyncGenerator<InstanceStreamItem> {
    return this.migration.send(name, opts);
  }

  receive(name: string, poolName: string, items: AsyncIterable<InstanceStreamItem>, opts: { precopyId?: string } = {}): Promise<InstanceView> {
    return this.migration.receive(name, poolName, items, opts);
  }

  stagePrecopy(name: string, poolName: string, precopyId: string, items: AsyncIterable<InstanceStreamItem>): Promise<void> {
    return this.migration.stagePrecopy(name, poolName, precopyId, items);
  }

  adopt(name: string, poolName: string): Promise<InstanceView> {
    return this.migration.adopt(name, poolName);
  }

  // ---- images ----

  async pullImageFrom(fingerprint: string, source: AsyncIterable<Uint8Array>, filename: string): Promise<ImageEntry> {
    return this.images.import(source, { expectedFingerprint: fingerprint, filename });
  }

  // ---- resources ----

  async poolUsage(): Promise<{ pool: StoragePool; usage: PoolUsage }[]> {
    const out = [];
    for (const pool of this.pools.values()) out.push({ pool, usage: await pool.usage() });
    return out;
  }

  async heartbeat(): Promise<HeartbeatSummary> {
    const names = [...this.index.keys()];
    const [running, images, resources] = await Promise.all([this.driver.runningNames(names), this.images.list(), hostResources()]);
    return {
      member: this.name,
      driver: this.driver.name,
      driverVersion: this.driver.version,
      instanceCount: names.length,
      runningCount: running.size,
      imageCount: images.length,
      fingerprints: images.map((i) => i.fingerprint),
      resources,
      startedAt: this.startedAt,
    };
  }

  // ---- internals ----

  private pool(name: string): StoragePool {
    const p = this.pools.get(name);
    if (!p) throw notFound(`Storage pool "${name}" not found on member "${this.name}"`);
    return p;
  }

  private checkArchitecture(image: ImageEntry): void {
    if (!supportedArchitectures().includes(image.architecture)) {
      throw invalidArgument(`Image architecture ${image.architecture} cannot run on member "${this.name}" (${supportedArchitectures().join(", ")})`);
    }
  }

  private async load(name: string): Promise<{ record: InstanceRecord; pool: StoragePool; paths: InstancePaths }> {
    const poolName = this.index.get(name);
    if (!poolName) throw notFound(`Instance "${name}" not found on member "${this.name}"`);
    const pool = this.pool(poolName);
    const owner = await pool.owner(name);
    if (owner !== this.name) {
      // Adopted by another member through the shared pool (or removed behind our back).
      this.index.delete(name);
      throw notFound(`Instance "${name}" not found on member "${this.name}"${owner ? ` (member "${owner}" owns it now)` : ""}`);
    }
    const dir = pool.instanceDir(name);
    return { record: await readRecord(dir), pool, paths: { dir, rootfs: join(dir, "rootfs") } };
  }

  private async runtime(record: InstanceRecord, paths: InstancePaths): Promise<RuntimeState> {
    return this.driver.state(record, paths);
  }

  private async view(name: string): Promise<InstanceView> {
    const { record, pool, paths } = await this.load(name);
    const { status } = await this.runtime(record, paths);
    return { record, pool, status, statusCode: STATUS_CODES[status] };
  }

  private locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.locks.set(name, tail);
    void tail.then(() => {
      if (this.locks.get(name) === tail) this.locks.delete(name);
    });
    return next;
  }
}
