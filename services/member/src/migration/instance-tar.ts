// The wire format of an instance between members: the instance directory
// (instance.json + rootfs/) as one tar stream, numeric owners, modes and xattrs
// kept, so an unprivileged rootfs (owned by 1000000+) arrives exactly as it left.
// The sha256 of the stream's bytes travels after them (SendInstance's trailer).
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { dataLoss, invalidArgument } from "../errors.ts";

export type InstanceStreamItem =
  | { kind: "data"; data: Uint8Array }
  | { kind: "trailer"; sha256: string; size: number }
  /** A delta pass's list of every path the instance has ("<type><path>", see manifest.ts); before any data. */
  | { kind: "paths"; entries: string[] };

export interface PackOptions {
  /** Only these paths (relative to the instance directory), each without its subtree: a delta pass. */
  only?: string[];
  /** The instance may be running (a pre-copy): files changing or vanishing under tar are not errors. */
  live?: boolean;
}

const TAR_KEEP = ["--numeric-owner", "--xattrs", "--xattrs-include=*"];

/** Streams `<parent>/<name>` as tar data chunks, then the trailer. The owner marker of shared pools stays behind. */
export async function* packInstance(parent: string, name: string, opts: PackOptions = {}): AsyncGenerator<InstanceStreamItem> {
  if (opts.only?.length === 0) {
    // A delta with nothing changed: no archive at all (the receiver starts no tar either).
    yield { kind: "trailer", sha256: createHash("sha256").digest("hex"), size: 0 };
    return;
  }
  const what = opts.only ? ["--no-recursion", "--null", "-T", "-"] : [`--exclude=${name}/owner`, name];
  const live = opts.live ? ["--warning=no-file-changed", "--warning=no-file-removed", "--ignore-failed-read"] : [];
  const tar = spawn("tar", ["-C", parent, "-cf", "-", ...TAR_KEEP, "--sparse", ...live, ...what], {
    stdio: [opts.only ? "pipe" : "ignore", "pipe", "pipe"],
  });
  if (opts.only) {
    tar.stdin!.on("error", () => {});
    tar.stdin!.end(opts.only.map((p) => `${name}/${p}\0`).join(""));
  }
  const stderr = collect(tar);
  const closed = once(tar, "close");
  const hash = createHash("sha256");
  let size = 0;
  try {
    for await (const chunk of tar.stdout as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      yield { kind: "data", data: chunk };
    }
    const [code] = (await closed) as [number | null];
    // GNU tar exits 1 when a file changed while it read it: expected of a live pre-copy (the delta pass sends it again).
    if (code !== 0 && !(opts.live && code === 1)) throw new Error(`tar of instance "${name}" failed: ${stderr().trim()}`);
    yield { kind: "trailer", sha256: hash.digest("hex"), size };
  } finally {
    if (tar.exitCode === null) tar.kill("SIGKILL");
  }
}

/**
 * Unpacks a packInstance stream into `dest` (the instance directory's contents
 * land directly in it). Rejects — leaving the caller to remove `dest` — when the
 * stream ends without a trailer or when the checksum or size differ.
 */
export async function unpackInstance(items: AsyncIterable<InstanceStreamItem>, dest: string): Promise<void> {
  // tar starts with the first data: an empty delta (nothing changed) spawns nothing.
  let tar: ChildProcess | undefined;
  let stderr = () => "";
  let closed: Promise<unknown[]> = Promise.resolve([0]);
  const start = (): ChildProcess => {
    const t = spawn("tar", ["-C", dest, "-xf", "-", ...TAR_KEEP, "--same-owner", "--same-permissions", "--strip-components=1"], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    stderr = collect(t);
    closed = once(t, "close");
    closed.catch(() => {});
    t.stdin!.on("error", () => {});
    return t;
  };
  const hash = createHash("sha256");
  let size = 0;
  let trailer: { sha256: string; size: number } | undefined;
  try {
    for await (const item of items) {
      if (item.kind === "trailer") {
        trailer = item;
        break;
      }
      if (item.kind === "paths") throw invalidArgument("A path list may only come before the data of a delta pass");
      tar ??= start();
      hash.update(item.data);
      size += item.data.length;
      if (!tar.stdin!.write(item.data)) await Promise.race([once(tar.stdin!, "drain"), closed]);
    }
    tar?.stdin!.end();
    const [code] = (await closed) as [number | null];
    if (!trailer) throw invalidArgument("The instance stream ended before its trailer (checksum)");
    const actual = hash.digest("hex");
    if (trailer.sha256 !== actual || trailer.size !== size) {
      throw dataLoss(`Instance transfer checksum mismatch: the sender says sha256 ${trailer.sha256} (${trailer.size} bytes), received ${actual} (${size} bytes)`);
    }
    if (code !== 0) throw new Error(`tar could not unpack the instance: ${stderr().trim()}`);
  } finally {
    if (tar && tar.exitCode === null) tar.kill("SIGKILL");
  }
}

function collect(child: ChildProcess): () => string {
  const parts: Buffer[] = [];
  child.stderr!.on("data", (b: Buffer) => parts.push(b));
  return () => Buffer.concat(parts).toString("utf8");
}
