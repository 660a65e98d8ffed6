// The member's content-addressed image store: <dir>/<fingerprint> is the image file
// exactly as imported, <dir>/<fingerprint>.json what we read from it. A file becomes
// visible only after its sha256 matched (rename of a fully written temp file).
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { once } from "node:events";
import { checkFingerprint, dataLoss, invalidArgument, notFound } from "../errors.ts";
import { detectCompression, readTarball, unpackRootfs, type Compression } from "./tarball.ts";

export interface ImageEntry {
  fingerprint: string;
  filename: string;
  size: number;
  architecture: string;
  /** metadata.yaml creation_date, ms since the epoch. */
  createdAt: number;
  properties: Record<string, string>;
  type: "container";
  compression: Compression;
  /** "" or "./": the member-name prefix inside the tarball. */
  prefix: string;
}

export interface ImportOptions {
  /** The fingerprint the caller expects; the file is refused when its sha256 differs. */
  expectedFingerprint?: string;
  filename?: string;
}

export class ImageStore {
  private readonly cache = new Map<string, ImageEntry>();

  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // Leftovers of imports interrupted by a crash.
    for (const name of await readdir(this.dir)) {
      if (name.startsWith(".incoming-")) await rm(join(this.dir, name), { force: true });
    }
  }

  path(fingerprint: string): string {
    checkFingerprint(fingerprint);
    return join(this.dir, fingerprint);
  }

  async get(fingerprint: string): Promise<ImageEntry | undefined> {
    checkFingerprint(fingerprint);
    const cached = this.cache.get(fingerprint);
    if (cached) return cached;
    try {
      const entry = JSON.parse(await readFile(join(this.dir, `${fingerprint}.json`), "utf8")) as ImageEntry;
      await stat(join(this.dir, fingerprint));
      this.cache.set(fingerprint, entry);
      return entry;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async require(fingerprint: string): Promise<ImageEntry> {
    const e = await this.get(fingerprint);
    if (!e) throw notFound(`Image "${fingerprint}" not found on this member`);
    return e;
  }

  async list(): Promise<ImageEntry[]> {
    const out: ImageEntry[] = [];
    for (const name of (await readdir(this.dir)).sort()) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const e = await this.get(name);
      if (e) out.push(e);
    }
    return out;
  }

  /**
   * Stores an image from a byte stream. The sha256 is computed while writing; the
   * file is refused (DATA_LOSS, nothing kept) when it differs from the expected
   * fingerprint, and refused (INVALID_ARGUMENT) when it is not a unified tarball.
   */
  async import(source: AsyncIterable<Uint8Array>, opts: ImportOptions = {}): Promise<ImageEntry> {
    if (opts.expectedFingerprint) checkFingerprint(opts.expectedFingerprint);
    const tmp = join(this.dir, `.incoming-${randomBytes(8).toString("hex")}`);
    const hash = createHash("sha256");
    let size = 0;
    try {
      const out = createWriteStream(tmp, { mode: 0o600 });
      const failed = once(out, "error").then(([e]) => Promise.reject(e as Error));
      failed.catch(() => {});
      for await (const chunk of source) {
        hash.update(chunk);
        size += chunk.length;
        if (!out.write(chunk)) await Promise.race([once(out, "drain"), failed]);
      }
      out.end();
      await Promise.race([once(out, "finish"), failed]);
      const fingerprint = hash.digest("hex");
      if (opts.expectedFingerprint && fingerprint !== opts.expectedFingerprint) {
        throw dataLoss(`Image fingerprint mismatch: expected ${opts.expectedFingerprint}, the file's sha256 is ${fingerprint}`);
      }
      if (size === 0) throw invalidArgument("Invalid image: empty file");
      const existing = await this.get(fingerprint);
      if (existing) return existing;
      const { metadata, prefix } = await readTarball(tmp);
      const entry: ImageEntry = {
        fingerprint,
        filename: opts.filename || `${fingerprint.slice(0, 12)}.tar`,
        size,
        architecture: metadata.architecture,
        createdAt: metadata.creationDate * 1000,
        properties: metadata.properties,
        type: "container",
        compression: await detectCompression(tmp),
        prefix,
      };
      await writeFile(join(this.dir, `${fingerprint}.json`), JSON.stringify(entry, null, 2) + "\n");
      await rename(tmp, join(this.dir, fingerprint));
      this.cache.set(fingerprint, entry);
      return entry;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  importFile(path: string, opts: ImportOptions = {}): Promise<ImageEntry> {
    return this.import(createReadStream(path), opts);
  }

  /** The image file, for SendImage. */
  async open(fingerprint: string): Promise<{ entry: ImageEntry; stream: NodeJS.ReadableStream }> {
    const entry = await this.require(fingerprint);
    return { entry, stream: createReadStream(this.path(fingerprint), { highWaterMark: 256 * 1024 }) };
  }

  async delete(fingerprint: string): Promise<void> {
    await this.require(fingerprint);
    this.cache.delete(fingerprint);
    await rm(join(this.dir, fingerprint), { force: true });
    await rm(join(this.dir, `${fingerprint}.json`), { force: true });
  }

  /** Unpacks the image's rootfs into dest/rootfs. */
  async unpack(fingerprint: string, dest: string): Promise<ImageEntry> {
    const entry = await this.require(fingerprint);
    await unpackRootfs(this.path(fingerprint), entry.prefix, dest);
    return entry;
  }
}
