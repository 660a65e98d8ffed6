// Log replication: what a leader sends and how followers answer (Raft §5.3),
// with pipelining (progress.ts), fast backtracking by term and snapshots for
// followers that fell behind the compacted log.

import type { Progress } from "./progress.ts";
import { quorumIndex } from "./quorum.ts";
import { maybeReleaseReads } from "./read-index.ts";
import { maybeSendTimeoutNow } from "./transfer.ts";
import type { Raft } from "./raft.ts";
import type { Message, NodeId } from "./types.ts";

/** Sends `to` the next entries it needs, or a snapshot if they are compacted. Returns whether anything was sent. */
export function sendAppend(r: Raft, to: NodeId, allowEmpty = true): boolean {
  const pr = r.progress.get(to);
  if (!pr || pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.term(prevIndex);
  if (prevTerm === undefined) return sendSnapshot(r, to, pr);
  const entries =
    pr.next <= r.log.lastIndex() ? r.log.slice(pr.next, r.log.lastIndex(), r.opts.maxMsgEntries, r.opts.maxMsgBytes) : [];
  if (entries.length === 0 && !allowEmpty) return false;
  const m = r.message("append", to);
  m.index = prevIndex;
  m.logTerm = prevTerm;
  m.entries = entries;
  m.commit = r.log.committed;
  m.context = r.readRounds.current;
  pr.sentCommit = Math.max(pr.sentCommit, m.commit);
  pr.sentAppend(entries.length ? entries[entries.length - 1].index : prevIndex, entries.length);
  r.send(m);
  return true;
}

function sendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  const meta = r.latestSnapshot;
  if (meta.index === 0) throw new Error(`${r.id}: ${to} needs compacted entries but there is no snapshot`);
  pr.becomeSnapshot(meta.index);
  const m = r.message("snapshot", to);
  // The driver streams the data; the core only names which snapshot.
  m.snapshot = { meta, data: new Uint8Array() };
  r.send(m);
  return true;
}

/** Sends every replica what it lacks (followers that are in sync get nothing). */
export function broadcastAppend(r: Raft): void {
  for (const id of r.progress.keys()) if (id !== r.id) while (sendAppend(r, id, false)) { /* pipeline */ }
}

export function broadcastHeartbeat(r: Raft): void {
  r.readRounds.broadcastNeeded = false;
  for (const [id, pr] of r.progress) {
    if (id === r.id) continue;
    const m = r.message("heartbeat", id);
    // Never tell a follower to commit beyond what it is known to hold.
    m.commit = Math.min(pr.match, r.log.committed);
    m.context = r.readRounds.current;
    pr.sentCommit = Math.max(pr.sentCommit, m.commit);
    r.send(m);
  }
}

/** Leader: commits the highest index a majority of voters holds, if it is of this term. */
export function maybeCommit(r: Raft): boolean {
  const index = quorumIndex(r.voters(), (id) => r.progress.get(id)?.match ?? 0);
  // Only entries of the current term commit by counting replicas (§5.4.2, Figure 8).
  if (index <= r.log.committed || r.log.term(index) !== r.term) return false;
  r.commitTo(index);
  if (r.role !== "leader") return true; // a committed conf change made us step down
  // Tell followers the new commit index now (an empty append if nothing else is due),
  // so that their state machines and follower reads are not a heartbeat behind.
  for (const id of r.progress.keys()) {
    if (id === r.id) continue;
    if (sendAppend(r, id, true)) while (sendAppend(r, id, false)) { /* pipeline */ }
  }
  return true;
}

export function handleAppendResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  if (m.context > pr.readAck) {
    pr.readAck = m.context;
    maybeReleaseReads(r);
  }
  if (m.reject) {
    const hint = m.logTerm > 0 ? r.log.findConflictByTerm(m.rejectHint, m.logTerm) : m.rejectHint;
    if (pr.maybeDecrTo(m.index, hint)) {
      if (pr.state === "replicate") pr.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  const wasPaused = pr.isPaused();
  if (pr.maybeUpdate(m.index)) {
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    }
    if (!maybeCommit(r) && r.role === "leader") {
      while (sendAppend(r, m.from, false)) { /* refill the pipeline */ }
      // A follower that was paused when the commit index moved has not heard of it.
      if (pr.sentCommit < r.log.committed && pr.match >= r.log.committed) sendAppend(r, m.from, true);
    }
    maybeSendTimeoutNow(r, m.from);
    r.maybeForgetLeaving(m.from);
  } else if (wasPaused && !pr.isPaused()) {
    while (sendAppend(r, m.from, false)) { /* the window opened */ }
  }
}

export function handleHeartbeatResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  pr.probeSent = false;
  if (m.context > pr.readAck) {
    pr.readAck = m.context;
    maybeReleaseReads(r);
  }
  if (pr.match < r.log.lastIndex()) {
    // Appends in flight may all have been lost; a heartbeat answer is our cue to
    // open the window a little so replication cannot stall forever.
    if (pr.state === "replicate" && pr.isPaused()) pr.freeOldestInflight();
    sendAppend(r, m.from);
  }
}

export function handleAppend(r: Raft, m: Message): void {
  const resp = r.message("append-resp", m.from);
  resp.context = m.context;
  if (m.index < r.log.committed) {
    // Everything up to our commit index is known to match; say how far we are.
    resp.index = r.log.committed;
    r.send(resp);
    return;
  }
  if (r.log.matchTerm(m.index, m.logTerm)) {
    const lastNew = m.index + m.entries.length;
    r.log.appendFromLeader(m.entries);
    r.logChanged();
    r.commitTo(Math.min(m.commit, lastNew));
    resp.index = lastNew;
    r.send(resp);
    return;
  }
  // Refuse, and hint where our logs may match: the last index at or below the
  // probed one whose term is not newer than the leader's term there. The leader
  // can then skip a whole conflicting term per round trip.
  const hintIndex = r.log.findConflictByTerm(Math.min(m.index, r.log.lastIndex()), m.logTerm);
  resp.reject = true;
  resp.index = m.index;
  resp.rejectHint = hintIndex;
  resp.logTerm = r.log.term(hintIndex) ?? 0;
  r.send(resp);
}

export function handleHeartbeat(r: Raft, m: Message): void {
  if (m.commit > r.log.committed) r.commitTo(Math.min(m.commit, r.log.lastIndex()));
  const resp = r.message("heartbeat-resp", m.from);
  resp.context = m.context;
  r.send(resp);
}

export function handleSnapshot(r: Raft, m: Message): void {
  const meta = m.snapshot!.meta;
  const resp = r.message("append-resp", m.from);
  if (meta.index <= r.log.committed) {
    resp.index = r.log.committed;
  } else if (r.log.matchTerm(meta.index, meta.term)) {
    // We already hold the snapshot's entries: just learn they are committed. Answer
    // only what is now known to match; entries after it are unchecked.
    r.commitTo(meta.index);
    resp.index = r.log.committed;
  } else {
    r.restoreSnapshot(meta);
    resp.index = meta.index;
  }
  r.send(resp);
}

/** The transport reports that a snapshot transfer finished or failed. */
export function reportSnapshot(r: Raft, to: NodeId, ok: boolean): void {
  const pr = r.progress.get(to);
  if (r.role !== "leader" || !pr || pr.state !== "snapshot") return;
  if (!ok) pr.pendingSnapshot = 0;
  pr.becomeProbe();
  // Wait for the follower's answer (or a heartbeat's) before probing again.
  pr.probeSent = true;
}

export function reportUnreachable(r: Raft, to: NodeId): void {
  const pr = r.progress.get(to);
  if (r.role === "leader" && pr && pr.state === "replicate") pr.becomeProbe();
}
