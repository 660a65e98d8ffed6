// The content-addressed image store: fingerprint = sha256 of the file, verified on
// import; LXD unified tarballs (gzip and xz); metadata; rootfs unpacking.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createReadStream, readFileSync, writeFileSync, existsSync, readdirSync, statSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { ImageStore } from "../src/images/image-store.ts";
import { parseImageMetadata, parseSimpleYaml } from "../src/images/metadata.ts";
import { AgentError } from "../src/errors.ts";
import { buildBusyboxImage, busyboxMissing, type BusyboxImage } from "./support/busybox-image.ts";
import { tempDir } from "./support/env.ts";

const missing = busyboxMissing();

describe("image store", { skip: missing && `no test image: ${missing}` }, () => {
  let img: BusyboxImage;
  let xz: BusyboxImage;
  const dir = tempDir("images");
  let store: ImageStore;

  before(async () => {
    img = buildBusyboxImage();
    xz = buildBusyboxImage({ compression: "xz", description: "busybox xz" });
    store = new ImageStore(join(dir.path, "images"));
    await store.init();
  });
  after(() => {
    img?.cleanup();
    xz?.cleanup();
    dir.cleanup();
  });

  it("builds the same tarball twice (deterministic fingerprint)", () => {
    const again = buildBusyboxImage();
    try {
      assert.equal(again.fingerprint, img.fingerprint);
    } finally {
      again.cleanup();
    }
  });

  it("imports a unified tarball under the sha256 of the file, with its metadata", async () => {
    const e = await store.importFile(img.path, { expectedFingerprint: img.fingerprint, filename: "busybox.tar.gz" });
    assert.equal(e.fingerprint, img.fingerprint);
    assert.equal(e.size, img.size);
    assert.equal(e.compression, "gzip");
    assert.equal(e.architecture, process.arch === "x64" ? "x86_64" : e.architecture);
    assert.equal(e.createdAt, 1_700_000_000_000);
    assert.deepEqual(e.properties, { description: "busybox test", os: "busybox", release: "1", stop_signal: "SIGUSR2" });
    assert.deepEqual(readFileSync(store.path(e.fingerprint)), readFileSync(img.path));
    assert.deepEqual((await store.list()).map((i) => i.fingerprint), [img.fingerprint]);
    // Importing the same file again is a no-op that answers the same entry.
    assert.equal((await store.importFile(img.path)).fingerprint, img.fingerprint);
  });

  it("refuses a tampered file (DATA_LOSS) and keeps nothing of it", async () => {
    const bytes = readFileSync(img.path);
    bytes[bytes.length - 100] ^= 0xff;
    const bad = join(img.dir, "tampered.tar.gz");
    writeFileSync(bad, bytes);
    await assert.rejects(store.importFile(bad, { expectedFingerprint: img.fingerprint }), (err: unknown) => {
      assert.ok(err instanceof AgentError);
      assert.equal(err.kind, "data-loss");
      assert.match(err.message, /fingerprint mismatch/);
      return true;
    });
    const files = readdirSync(store.dir);
    assert.deepEqual(files.filter((f) => f.startsWith(".incoming")), []);
    assert.equal(files.filter((f) => /^[0-9a-f]{64}$/.test(f)).length, 1);
  });

  it("refuses a file that is not a unified tarball", async () => {
    const bad = join(img.dir, "not-an-image.tar.gz");
    writeFileSync(bad, "hello");
    await assert.rejects(store.importFile(bad), /not a unified image tarball/);
    assert.deepEqual(readdirSync(store.dir).filter((f) => f.startsWith(".incoming")), []);
  });

  it("reads xz-compressed images too", async () => {
    const e = await store.importFile(xz.path, { expectedFingerprint: xz.fingerprint });
    assert.equal(e.compression, "xz");
    assert.equal(e.properties.description, "busybox xz");
  });

  it("unpacks the rootfs with its symlinks and modes", async () => {
    const dest = join(dir.path, "unpack");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(dest);
    await store.unpack(img.fingerprint, dest);
    const rootfs = join(dest, "rootfs");
    assert.ok(statSync(join(rootfs, "bin/busybox")).mode & 0o100);
    assert.ok(lstatSync(join(rootfs, "sbin/init")).isSymbolicLink());
    assert.equal(statSync(join(rootfs, "tmp")).mode & 0o7777, 0o1777);
    assert.equal(readFileSync(join(rootfs, "etc/hello.txt"), "utf8"), "hello from busybox\n");
  });

  it("streams an image out and deletes it", async () => {
    const { entry, stream } = await store.open(xz.fingerprint);
    const chunks: Buffer[] = [];
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
    assert.equal(Buffer.concat(chunks).length, entry.size);
    await store.delete(xz.fingerprint);
    assert.equal(await store.get(xz.fingerprint), undefined);
    assert.ok(!existsSync(store.path(xz.fingerprint)));
  });

  it("imports from any byte stream", async () => {
    const s2 = new ImageStore(join(dir.path, "images2"));
    await s2.init();
    const e = await s2.import(createReadStream(img.path, { highWaterMark: 4096 }), { expectedFingerprint: img.fingerprint });
    assert.equal(e.fingerprint, img.fingerprint);
  });
});

describe("metadata.yaml", () => {
  it("reads the fields LXD images carry", () => {
    const m = parseImageMetadata(
      [
        "# comment",
        "architecture: amd64",
        "creation_date: 1700000000",
        "properties:",
        "  description: \"Debian bookworm: amd64 (20231114_05:24)\"",
        "  os: Debian",
        "  release: 'bookworm'",
        "templates:",
        "  /etc/hostname:",
        "    when:",
        "      - create",
        "      - copy",
        "    template: hostname.tpl",
        "",
      ].join("\n"),
    );
    assert.equal(m.architecture, "x86_64");
    assert.equal(m.creationDate, 1_700_000_000);
    assert.deepEqual(m.properties, { description: "Debian bookworm: amd64 (20231114_05:24)", os: "Debian", release: "bookworm" });
    assert.deepEqual(m.templates, ["/etc/hostname"]);
  });

  it("refuses metadata without an architecture", () => {
    assert.throws(() => parseImageMetadata("creation_date: 1\n"), /no architecture/);
  });

  it("parses nested maps by indentation", () => {
    assert.deepEqual(parseSimpleYaml("a:\n  b: 1\n  c:\n    d: x # note\ne: \"q # not a comment\"\n"), {
      a: { b: "1", c: { d: "x" } },
      e: "q # not a comment",
    });
  });
});
