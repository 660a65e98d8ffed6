// The contract between the transport and the node for streamed snapshots.
//
// Sending: the node hands the transport the core's `snapshot` Message (with an
// empty data array) and a SnapshotSource over the state machine's bytes.
//
// Receiving: for each incoming snapshot the transport calls
// SnapshotReceiver.begin() once, writes the bytes to the returned sink in order,
// then calls finish() and delivers the core's `snapshot` Message (meta, empty
// data) through onMessages, so the core installs it and the node reads the bytes
// it stored. The transport keeps an unfinished sink open across interrupted
// streams, so a resumed transfer continues writing into the same sink.
import type { NodeId, SnapshotMeta } from "../core/types.ts";

export interface SnapshotSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Reads `length` bytes at `offset` (the last read may be shorter than asked, never empty). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export interface SnapshotReceiver {
  /**
   * Opens a sink for the snapshot `meta` sent by `from`. At most one sink per
   * sender is open; a newer snapshot from the same sender aborts the older one.
   */
  begin(meta: SnapshotMeta, from: NodeId): SnapshotSink | Promise<SnapshotSink>;
}

export interface SnapshotSink {
  /**
   * Bytes already held when begin() returned (0 normally; more when the node kept
   * a partial file of this very snapshot, e.g. across a restart). The sender resumes here.
   */
  readonly offset: number;
  /** Appends `chunk`; `offset` is where it goes (always the previous end). */
  write(offset: number, chunk: Uint8Array): Promise<void>;
  /** All bytes written: make them durable and ready for the core to install. */
  finish(): Promise<void>;
  /** Discard: superseded by a newer snapshot, failed, or the transport is closing. */
  abort(): Promise<void>;
}

/** Chunk size of InstallSnapshot streams. */
export const DEFAULT_SNAPSHOT_CHUNK = 1 << 20;
