// The pre-copy's change detection (migration/manifest.ts) on made-up entries: what a
// delta pass sends again, and what a staged copy must lose.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { changedSince, removals, RACY_NS, typedPaths, type Manifest, type ManifestEntry, type Walk } from "../src/migration/manifest.ts";

const WALK_NS = 1_800_000_000_000_000_000n; // the first walk's start (2027)
const OLD = WALK_NS - 10n * RACY_NS;

const entry = (type: ManifestEntry["type"], over: Partial<ManifestEntry> = {}): ManifestEntry => ({ type, size: 4n, mode: 0o100644n, uid: 1_000_000n, gid: 1_000_000n, ino: 7n, mtimeNs: OLD, ctimeNs: OLD, ...over });
const manifest = (entries: [string, ManifestEntry][]): Manifest => new Map(entries);

describe("pre-copy: what the delta pass sends", () => {
  const before: Walk = {
    startedNs: WALK_NS,
    racyNs: RACY_NS,
    manifest: manifest([
      ["instance.json", entry("f")],
      ["rootfs", entry("d")],
      ["rootfs/same", entry("f", { ino: 1n })],
      ["rootfs/rewritten", entry("f", { ino: 2n })],
      ["rootfs/racy", entry("f", { ino: 3n, ctimeNs: WALK_NS - RACY_NS / 2n })],
      ["rootfs/chowned", entry("f", { ino: 4n })],
      ["rootfs/replaced", entry("f", { ino: 5n })],
    ]),
  };

  it("sends new, changed and racily clean entries, in walk order, and nothing unchanged", () => {
    const after = manifest([
      ["instance.json", entry("f")],
      ["rootfs", entry("d", { mtimeNs: WALK_NS + 5n, ctimeNs: WALK_NS + 5n })],
      ["rootfs/added", entry("f", { ino: 9n })],
      ["rootfs/chowned", entry("f", { ino: 4n, uid: 0n, ctimeNs: WALK_NS + 1n })],
      ["rootfs/racy", entry("f", { ino: 3n, ctimeNs: WALK_NS - RACY_NS / 2n })],
      ["rootfs/replaced", entry("f", { ino: 6n })],
      ["rootfs/rewritten", entry("f", { ino: 2n, ctimeNs: WALK_NS + 2n, mtimeNs: WALK_NS + 2n })],
      ["rootfs/same", entry("f", { ino: 1n })],
    ]);
    assert.deepEqual(changedSince(before, after), ["rootfs", "rootfs/added", "rootfs/chowned", "rootfs/racy", "rootfs/replaced", "rootfs/rewritten"]);
  });

  it("catches a same-size rewrite by ctime alone (mtime set back by the writer)", () => {
    const after = manifest([...before.manifest].map(([p, e]) => [p, p === "rootfs/same" ? { ...e, ctimeNs: WALK_NS + 3n } : e]));
    assert.deepEqual(changedSince(before, after), ["rootfs/same", "rootfs/racy"]);
  });
});

describe("pre-copy: what the staged copy loses", () => {
  const staged = manifest([
    ["instance.json", entry("f")],
    ["rootfs", entry("d")],
    ["rootfs/dir", entry("d")],
    ["rootfs/dir/a", entry("f")],
    ["rootfs/dir/b", entry("f")],
    ["rootfs/gone", entry("f")],
    ["rootfs/link", entry("l")],
    ["rootfs/keep", entry("f")],
  ]);

  it("removes what the source no longer lists or lists with another type, a subtree once", () => {
    const wanted = new Set(["finstance.json", "drootfs", "frootfs/dir", "drootfs/link", "frootfs/keep"]);
    assert.deepEqual(removals(staged, wanted), ["rootfs/dir", "rootfs/gone", "rootfs/link"]);
  });

  it("removes nothing when the lists match", () => {
    assert.deepEqual(removals(staged, new Set(typedPaths(staged))), []);
  });
});
