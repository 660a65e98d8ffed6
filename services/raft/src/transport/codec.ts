// Converts between the core's plain data (core/types.ts) and the generated
// protobuf types (proto/gen/raft.ts). Byte fields are wrapped, not copied, except
// log entries' data, which outlives the received frame (see ownBytes).
import type * as core from "../core/types.ts";
import * as pb from "../../../../proto/gen/raft.ts";

const MESSAGE_TYPES: ReadonlyArray<readonly [core.MessageType, pb.MessageType]> = [
  ["prevote", pb.MessageType.PREVOTE],
  ["prevote-resp", pb.MessageType.PREVOTE_RESP],
  ["vote", pb.MessageType.VOTE],
  ["vote-resp", pb.MessageType.VOTE_RESP],
  ["append", pb.MessageType.APPEND],
  ["append-resp", pb.MessageType.APPEND_RESP],
  ["heartbeat", pb.MessageType.HEARTBEAT],
  ["heartbeat-resp", pb.MessageType.HEARTBEAT_RESP],
  ["snapshot", pb.MessageType.SNAPSHOT],
  ["timeout-now", pb.MessageType.TIMEOUT_NOW],
  ["read-index", pb.MessageType.READ_INDEX],
  ["read-index-resp", pb.MessageType.READ_INDEX_RESP],
  ["transfer-leader", pb.MessageType.TRANSFER_LEADER],
];
const TYPE_TO_PB = new Map(MESSAGE_TYPES);
const TYPE_FROM_PB = new Map(MESSAGE_TYPES.map(([c, p]) => [p, c] as const));

const ROLES: ReadonlyArray<readonly [core.Role, pb.Role]> = [
  ["voter", pb.Role.VOTER],
  ["standby", pb.Role.STANDBY],
  ["spare", pb.Role.SPARE],
];
const ROLE_TO_PB = new Map(ROLES);
const ROLE_FROM_PB = new Map(ROLES.map(([c, p]) => [p, c] as const));

/** Thrown when a peer sends something this version cannot represent. */
export class DecodeError extends Error {}

export function roleToProto(role: core.Role): pb.Role {
  return ROLE_TO_PB.get(role) ?? pb.Role.UNSPECIFIED;
}

export function roleFromProto(role: pb.Role): core.Role {
  const r = ROLE_FROM_PB.get(role);
  if (r === undefined) throw new DecodeError(`unknown role ${role}`);
  return r;
}

/** A Buffer view over the same memory: the generated types declare Buffer. */
function buf(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** A plain Uint8Array view: the core must not see Buffer (its slice() does not copy). */
function bytes(data: Buffer): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function entryToProto(e: core.Entry): pb.Entry {
  return {
    index: e.index,
    term: e.term,
    type: e.type === "conf" ? pb.EntryType.CONF : pb.EntryType.NORMAL,
    data: buf(e.data),
  };
}

export function entryFromProto(e: pb.Entry): core.Entry {
  if (e.type !== pb.EntryType.NORMAL && e.type !== pb.EntryType.CONF) {
    throw new DecodeError(`unknown entry type ${e.type}`);
  }
  return { index: e.index, term: e.term, type: e.type === pb.EntryType.CONF ? "conf" : "normal", data: ownBytes(e.data) };
}

/**
 * Entries live in the in-memory log until the next snapshot, so their data must
 * not be a view that keeps a whole received frame (or a shared pool slab) alive.
 * The generated decoder already copies bytes fields into a Buffer of their own
 * when they are large: copying those again doubled what followers allocate.
 */
function ownBytes(data: Buffer): Uint8Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? bytes(data) : new Uint8Array(data);
}

export function hardStateToProto(h: core.HardState): pb.HardState {
  return { term: h.term, vote: h.vote, commit: h.commit };
}

export function hardStateFromProto(h: pb.HardState): core.HardState {
  return { term: h.term, vote: h.vote, commit: h.commit };
}

export function configToProto(c: core.Config): pb.Config {
  const members: Record<string, pb.ConfigMember> = {};
  for (const [id, m] of Object.entries(c.members)) {
    members[id] = { role: roleToProto(m.role), address: m.address };
  }
  return { members };
}

export function configFromProto(c: pb.Config | undefined): core.Config {
  const members: Record<core.NodeId, core.ConfigMember> = {};
  for (const [id, m] of Object.entries(c?.members ?? {})) {
    members[id] = { role: roleFromProto(m.role), address: m.address };
  }
  return { members };
}

export function snapshotMetaToProto(m: core.SnapshotMeta): pb.SnapshotMeta {
  return { index: m.index, term: m.term, config: configToProto(m.config) };
}

export function snapshotMetaFromProto(m: pb.SnapshotMeta | undefined): core.SnapshotMeta {
  if (!m) throw new DecodeError("snapshot meta missing");
  return { index: m.index, term: m.term, config: configFromProto(m.config) };
}

export function snapshotToProto(s: core.Snapshot): pb.Snapshot {
  return { meta: snapshotMetaToProto(s.meta), data: buf(s.data) };
}

export function snapshotFromProto(s: pb.Snapshot): core.Snapshot {
  return { meta: snapshotMetaFromProto(s.meta), data: bytes(s.data) };
}

export function messageToProto(m: core.Message): pb.Message {
  const type = TYPE_TO_PB.get(m.type);
  if (type === undefined) throw new TypeError(`unknown message type ${String(m.type)}`);
  return {
    type,
    from: m.from,
    to: m.to,
    term: m.term,
    index: m.index,
    logTerm: m.logTerm,
    entries: m.entries.map(entryToProto),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context,
    snapshot: m.snapshot ? snapshotToProto(m.snapshot) : undefined,
    transfer: m.transfer,
  };
}

export function messageFromProto(m: pb.Message): core.Message {
  const type = TYPE_FROM_PB.get(m.type);
  if (type === undefined) throw new DecodeError(`unknown message type ${m.type}`);
  const out: core.Message = {
    type,
    from: m.from,
    to: m.to,
    term: m.term,
    index: m.index,
    logTerm: m.logTerm,
    entries: m.entries.map(entryFromProto),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context,
  };
  // Optional fields stay absent rather than undefined, so decoded messages deep-equal the originals.
  if (m.snapshot) out.snapshot = snapshotFromProto(m.snapshot);
  if (m.transfer !== undefined) out.transfer = m.transfer;
  return out;
}
