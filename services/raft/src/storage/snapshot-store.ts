// Durable snapshots of the state machine. Every snapshot is built under a tmp-*
// name, fsynced, and renamed into place, so a crash leaves either the complete
// snapshot or nothing that counts. The newest `retain` snapshots are kept so the
// one being sent to a slow follower is not deleted under it by the next one.

import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
} from "node:fs";
import { join } from "node:path";
import type { SnapshotMeta } from "../core/types.ts";
import { StorageCorruptionError } from "./corruption-error.ts";
import { fsyncDir } from "./fsync-dir.ts";
import {
  DATA_FILE,
  META_FILE,
  TEMP_PREFIX,
  decodeMeta,
  encodeMeta,
  fsyncFile,
  parseSnapshotDirName,
  receiveDirName,
  removeDir,
  snapshotDirName,
  writeFileDurably,
} from "./snapshot-layout.ts";
import { SnapshotReceiver, type ReceiverHost, type StoredSnapshot } from "./snapshot-receiver.ts";

export type { StoredSnapshot, ReceiveProgress } from "./snapshot-receiver.ts";
export { SnapshotReceiver } from "./snapshot-receiver.ts";

export interface SnapshotStoreOptions {
  /** How many published snapshots to keep, newest by index. Default 2. */
  retain?: number;
}

/** A published snapshot opened for streaming to a follower. Holds an fd, so pruning cannot pull it away. */
export interface SnapshotSource {
  meta: SnapshotMeta;
  size: number;
  /** Up to `length` bytes from `offset` (fewer at the end of the data). */
  read(offset: number, length: number): Buffer;
  close(): void;
}

/** Marks a receive temp dir with the stream it holds bytes of; see beginReceive. */
const STREAM_FILE = "stream";

export class SnapshotStore implements ReceiverHost {
  private readonly receivers = new Map<string, SnapshotReceiver>();
  private saveSeq = 0;

  private constructor(
    readonly dir: string,
    private readonly retain: number,
  ) {}

  /** Opens (or creates) the store, deleting leftovers of interrupted saves, receives and prunes. */
  static open(dir: string, opts: SnapshotStoreOptions = {}): SnapshotStore {
    const retain = opts.retain ?? 2;
    if (!Number.isInteger(retain) || retain < 1) throw new RangeError(`snapshot retain must be >= 1, got ${retain}`);
    mkdirSync(dir, { recursive: true });
    let removed = false;
    for (const name of readdirSync(dir)) {
      if (name.startsWith(TEMP_PREFIX)) {
        rmSync(join(dir, name), { recursive: true, force: true });
        removed = true;
      }
    }
    if (removed) fsyncDir(dir);
    return new SnapshotStore(dir, retain);
  }

  /**
   * Writes a snapshot: `writeData(path)` must create the data file at `path`
   * (e.g. a SQLite backup). The store then fsyncs it, adds meta.json, publishes
   * it atomically and prunes old snapshots.
   */
  async save(meta: SnapshotMeta, writeData: (path: string) => Promise<void> | void): Promise<StoredSnapshot> {
    const tempDir = join(this.dir, `${TEMP_PREFIX}save-${snapshotDirName(meta)}-${process.pid}-${this.saveSeq++}`);
    mkdirSync(tempDir);
    try {
      const dataPath = join(tempDir, DATA_FILE);
      await writeData(dataPath);
      if (!existsSync(dataPath)) throw new Error(`snapshot writer did not create ${dataPath}`);
      return this.publish(tempDir, meta);
    } catch (err) {
      rmSync(tempDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The newest published snapshot, if any. */
  latest(): StoredSnapshot | undefined {
    const [newest] = this.publishedNames();
    return newest === undefined ? undefined : this.load(newest);
  }

  /** All published snapshots, newest first. */
  list(): StoredSnapshot[] {
    return this.publishedNames().map((name) => this.load(name));
  }

  openForSend(meta: { index: number; term: number }): SnapshotSource {
    if (!existsSync(join(this.dir, snapshotDirName(meta)))) {
      throw new Error(`no snapshot ${meta.index}/${meta.term} in ${this.dir}`);
    }
    const snapshot = this.load(snapshotDirName(meta));
    const fd = openSync(snapshot.dataPath, "r");
    const size = fstatSync(fd).size;
    return {
      meta: snapshot.meta,
      size,
      read(offset: number, length: number): Buffer {
        const buf = Buffer.allocUnsafe(Math.max(0, Math.min(length, size - offset)));
        let done = 0;
        while (done < buf.length) {
          const n = readSync(fd, buf, done, buf.length - done, offset + done);
          if (n === 0) throw new Error(`snapshot ${snapshotDirName(meta)} shrank while being sent`);
          done += n;
        }
        return buf;
      },
      close(): void {
        closeSync(fd);
      },
    };
  }

  /**
   * Starts (or resumes) receiving the snapshot `meta` in chunks. Bytes already
   * received for the same snapshot from the same `streamId` (e.g. leader id and
   * term: two leaders' database files for one index need not be byte-identical)
   * are kept, and the receiver's offset says where the sender should resume.
   * A receiver still open for the same snapshot is superseded.
   */
  beginReceive(meta: SnapshotMeta, opts: { streamId?: string } = {}): SnapshotReceiver {
    const streamId = opts.streamId ?? "";
    const name = receiveDirName(meta);
    const tempDir = join(this.dir, name);
    this.receivers.get(name)?.supersede();
    if (existsSync(tempDir) && readStream(tempDir) !== streamId) {
      rmSync(tempDir, { recursive: true, force: true });
    }
    if (!existsSync(tempDir)) {
      mkdirSync(tempDir);
      writeFileDurably(join(tempDir, STREAM_FILE), streamId);
      writeFileDurably(join(tempDir, DATA_FILE), "");
    }
    const receiver = new SnapshotReceiver(meta, tempDir, this);
    this.receivers.set(name, receiver);
    return receiver;
  }

  /** @internal ReceiverHost: seal a complete temp directory and rename it into place. */
  publish(tempDir: string, meta: SnapshotMeta): StoredSnapshot {
    const finalDir = join(this.dir, snapshotDirName(meta));
    rmSync(join(tempDir, STREAM_FILE), { force: true });
    fsyncFile(join(tempDir, DATA_FILE));
    writeFileDurably(join(tempDir, META_FILE), encodeMeta(meta));
    fsyncDir(tempDir);
    if (existsSync(finalDir)) {
      // Already have this snapshot (same index and term): keep the published one.
      rmSync(tempDir, { recursive: true, force: true });
    } else {
      renameSync(tempDir, finalDir);
    }
    fsyncDir(this.dir);
    this.prune();
    return { meta, dataPath: join(finalDir, DATA_FILE) };
  }

  /** @internal ReceiverHost */
  discard(tempDir: string): void {
    rmSync(tempDir, { recursive: true, force: true });
  }

  /** @internal ReceiverHost */
  released(receiver: SnapshotReceiver): void {
    const name = receiveDirName(receiver.meta);
    if (this.receivers.get(name) === receiver) this.receivers.delete(name);
  }

  private prune(): void {
    const doomed = this.publishedNames().slice(this.retain);
    for (const name of doomed) removeDir(join(this.dir, name));
    if (doomed.length > 0) fsyncDir(this.dir);
  }

  /** Published snapshot directory names, newest (highest index, then term) first. */
  private publishedNames(): string[] {
    const found: { name: string; index: number; term: number }[] = [];
    for (const name of readdirSync(this.dir)) {
      const id = parseSnapshotDirName(name);
      if (id) found.push({ name, ...id });
    }
    found.sort((a, b) => b.index - a.index || b.term - a.term);
    return found.map((f) => f.name);
  }

  private load(name: string): StoredSnapshot {
    const metaPath = join(this.dir, name, META_FILE);
    let meta: SnapshotMeta;
    try {
      meta = decodeMeta(readFileSync(metaPath, "utf8"));
    } catch (err) {
      throw new StorageCorruptionError(metaPath, 0, (err as Error).message);
    }
    const id = parseSnapshotDirName(name);
    if (!id || id.index !== meta.index || id.term !== meta.term) {
      throw new StorageCorruptionError(metaPath, 0, `meta says ${meta.index}/${meta.term}, directory is ${name}`);
    }
    return { meta, dataPath: join(this.dir, name, DATA_FILE) };
  }
}

function readStream(tempDir: string): string | undefined {
  try {
    return readFileSync(join(tempDir, STREAM_FILE), "utf8");
  } catch {
    return undefined;
  }
}
