// Moving a running instance with a pre-copy, as two passes of SendInstance/ReceiveInstance:
//
//   1. pre-copy (the instance may still run, or be stopping): the source walks the
//      instance directory (manifest.ts), then sends all of it; it remembers the walk
//      under the caller's pre-copy id. The target unpacks it into a staging
//      directory named by that id — no instance appears.
//   2. delta (the instance is stopped): the source walks again and sends the list of
//      every path it has now, then a tar of only the entries changed since the first
//      walk. The target removes from the staged copy what the list lacks, unpacks the
//      delta over it and commits it like a full copy.
//
// The instance's downtime in a move is then the delta, not the whole rootfs: the
// pre-copy runs while it shuts down. Either pass failing leaves nothing behind on the
// target but a staging directory its agent removes (next pre-copy of the name, a
// commit, or its restart); the caller then falls back to a full copy.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { invalidArgument, preconditionFailed } from "../errors.ts";
import type { InstanceStreamItem } from "./instance-tar.ts";
import { removals, walkManifest, type Walk } from "./manifest.ts";

/** How long a source remembers a pre-copy it sent, and how many at most. */
const KEEP_MS = 10 * 60_000;
const KEEP_MAX = 256;

export function checkPrecopyId(id: string): void {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw invalidArgument(`Invalid pre-copy id "${id}": letters, digits and '-', at most 64`);
}

/** The source's memory of the pre-copies it sent: id → the instance and the walk taken before sending. */
export class PrecopyLedger {
  private readonly sent = new Map<string, { name: string; walk: Walk; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  record(id: string, name: string, walk: Walk): void {
    checkPrecopyId(id);
    this.prune();
    this.sent.set(id, { name, walk, at: this.now() });
  }

  /** The walk of pre-copy `id` of `name`; FAILED_PRECONDITION when unknown here (the caller copies in full). */
  recall(id: string, name: string): Walk {
    const entry = this.sent.get(id);
    if (!entry || entry.name !== name) throw preconditionFailed(`No pre-copy "${id}" of instance "${name}" on this member: send it in full`);
    return entry.walk;
  }

  forget(id: string): void {
    this.sent.delete(id);
  }

  private prune(): void {
    const cutoff = this.now() - KEEP_MS;
    for (const [id, e] of this.sent) if (e.at < cutoff) this.sent.delete(id);
    while (this.sent.size >= KEEP_MAX) this.sent.delete(this.sent.keys().next().value!);
  }
}

/**
 * Target side of a delta pass: reads the leading path list from `items`, removes
 * from `staged` what the source no longer has, and returns the remaining items
 * (the delta's tar data and trailer) for unpackInstance.
 */
export async function applyPathList(staged: string, items: AsyncIterable<InstanceStreamItem>): Promise<AsyncIterable<InstanceStreamItem>> {
  const it = items[Symbol.asyncIterator]();
  const wanted = new Set<string>();
  let next = await it.next();
  for (; !next.done && next.value.kind === "paths"; next = await it.next()) {
    for (const e of next.value.entries) wanted.add(e);
  }
  if (wanted.size === 0) throw invalidArgument("A delta pass must begin with the instance's path list");
  const { manifest } = await walkManifest(staged);
  // Our own walk found these (no symlink followed), so removing them stays inside `staged`.
  for (const path of removals(manifest, wanted)) await rm(join(staged, path), { recursive: true, force: true });
  const first = next;
  // The first non-path item was already read: hand it on, then the rest.
  return (async function* () {
    for (let n = first; !n.done; n = await it.next()) yield n.value;
  })();
}
