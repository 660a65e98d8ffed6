// The vocabulary of the Raft core. Everything here is plain data: the core never
// does I/O, so these shapes are what crosses between the core and its adapters
// (disk, network, state machine, simulator).

/** A node's identity inside the Raft group. Stable across restarts and address changes. */
export type NodeId = string;

/**
 * The database roles of LXD's model, mapped onto Raft:
 * - voter   (LXD `database`): replicates the log and votes.
 * - standby (LXD `database-standby`): replicates the log, does not vote (a learner).
 * - spare: known to the group, holds no replica and receives nothing.
 */
export type Role = "voter" | "standby" | "spare";

export interface ConfigMember {
  role: Role;
  /** Where the node's transport listens; opaque to the core, carried for the adapters. */
  address: string;
}

/** The cluster configuration: every node the group knows, with its role. */
export interface Config {
  members: Record<NodeId, ConfigMember>;
}

export type EntryType = "normal" | "conf";

export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  /**
   * For `normal`: the application's command (empty for the no-op a new leader appends).
   * For `conf`: an encoded ConfChange (see confchange.ts).
   */
  data: Uint8Array;
}

/** What must be durable before the node acknowledges anything. */
export interface HardState {
  term: number;
  /** Who this node voted for in `term`, or "" for nobody. */
  vote: NodeId;
  /** Highest index known committed. Persisted so a restart can re-apply up to it. */
  commit: number;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  config: Config;
}

/** A snapshot: metadata plus the state machine's bytes (a SQLite database file for the real node). */
export interface Snapshot {
  meta: SnapshotMeta;
  /** Opaque to the core. Real adapters stream it in chunks and hand the core an empty array. */
  data: Uint8Array;
}

export type MessageType =
  | "prevote"
  | "prevote-resp"
  | "vote"
  | "vote-resp"
  | "append"
  | "append-resp"
  | "heartbeat"
  | "heartbeat-resp"
  | "snapshot"
  | "timeout-now"
  | "read-index"
  | "read-index-resp"
  | "transfer-leader";

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** append: index of the entry before `entries`; vote/prevote: candidate's last index. */
  index: number;
  /** append: term of the entry at `index`; vote/prevote: candidate's last term. */
  logTerm: number;
  entries: Entry[];
  /** append/heartbeat: the leader's commit index. */
  commit: number;
  /** responses: true when the request was refused. */
  reject: boolean;
  /** append-resp on reject: the follower's hint of where the logs may match. */
  rejectHint: number;
  /**
   * Heartbeat and append: the leader's read round. Responses echo it; it lets
   * ReadIndex confirm leadership without extra messages under load.
   * read-index / read-index-resp: the caller's request id.
   */
  context: number;
  /** snapshot: the snapshot to install (data may be streamed separately by the transport). */
  snapshot?: Snapshot;
  /** vote: the campaign was started by a leadership transfer, so leases do not apply. */
  transfer?: boolean;
}

/** A linearizable read that may proceed once the local state machine has applied `index`. */
export interface ReadState {
  index: number;
  /** The id the caller passed to readIndex(). */
  requestId: number;
}

export type StateRole = "follower" | "pre-candidate" | "candidate" | "leader";

export interface SoftState {
  leader: NodeId;
  role: StateRole;
}

/**
 * What the core asks its driver to do, in this order:
 * 1. send `messages` (they need nothing durable);
 * 2. install `snapshot` if present, append `entries` (replacing any from
 *    entries[0].index on), persist `hardState` if present, and fsync;
 * 3. send `messagesAfterPersist` (they acknowledge what step 2 made durable);
 * 4. apply `committedEntries` in order and serve `readStates` once applied;
 * 5. call advance(ready).
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  snapshot?: Snapshot;
  entries: Entry[];
  messages: Message[];
  messagesAfterPersist: Message[];
  committedEntries: Entry[];
  readStates: ReadState[];
  /** Reads (by requestId) this node could not serve: no leader, or leadership was lost. */
  droppedReads: number[];
}

export function emptyMessage(type: MessageType, from: NodeId, to: NodeId, term: number): Message {
  return {
    type,
    from,
    to,
    term,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: 0,
  };
}
