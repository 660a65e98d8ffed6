// One-line renderings of the core's data for the scenario harness (interaction.ts).
// Every rendering is deterministic: ids sorted, no timestamps, no object identity.

import { decodeConfChange } from "../../src/core/confchange.ts";
import type { RawNode } from "../../src/core/raw-node.ts";
import type { Config, Entry, HardState, Message, NodeId } from "../../src/core/types.ts";

const decoder = new TextDecoder();

/** `4/2`: an entry's (or a log position's) index and term. */
export function pos(index: number, term: number | undefined): string {
  return `${index}/${term ?? "?"}`;
}

/** Entry ids, runs of one term shortened: `[4/2 5/3..7/3]`. */
export function entryIds(entries: readonly Entry[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < entries.length) {
    let j = i;
    while (j + 1 < entries.length && entries[j + 1].term === entries[i].term && entries[j + 1].index === entries[j].index + 1) j++;
    const first = pos(entries[i].index, entries[i].term);
    parts.push(j - i >= 2 ? `${first}..${pos(entries[j].index, entries[j].term)}` : entries.slice(i, j + 1).map((e) => pos(e.index, e.term)).join(" "));
    i = j + 1;
  }
  return `[${parts.join(" ")}]`;
}

/** `5/2 "x"`, `4/2 noop`, `6/2 conf n4=standby`, `7/2 conf remove n3`. */
export function entry(e: Entry): string {
  const id = pos(e.index, e.term);
  if (e.type === "conf") {
    const cc = decodeConfChange(e.data);
    return cc.op === "remove" ? `${id} conf remove ${cc.id}` : `${id} conf ${cc.id}=${cc.role}`;
  }
  return e.data.length === 0 ? `${id} noop` : `${id} ${JSON.stringify(decoder.decode(e.data))}`;
}

/** `n1=voter n2=voter n4=standby` (sorted; `(empty)` for none). */
export function config(c: Config): string {
  const ids = Object.keys(c.members).sort(compareIds);
  return ids.length ? ids.map((id) => `${id}=${c.members[id].role}`).join(" ") : "(empty)";
}

export function hardState(h: HardState): string {
  return `term=${h.term} vote=${h.vote || "-"} commit=${h.commit}`;
}

/**
 * One message on one line: `n1->n2 append t2 prev=3/1 commit=3 entries=[4/2]`.
 * `sender` is who put it on the wire (a forwarded transfer-leader names its target in `from`).
 */
export function message(sender: NodeId, m: Message): string {
  const head = `${sender}->${m.to} ${m.type} t${m.term}`;
  const read = m.context ? ` read=${m.context}` : "";
  switch (m.type) {
    case "prevote":
    case "vote":
      return `${head} last=${pos(m.index, m.logTerm)}${m.transfer ? " transfer" : ""}`;
    case "prevote-resp":
    case "vote-resp":
      return `${head}${m.reject ? " rejected" : ""}`;
    case "append":
      return `${head} prev=${pos(m.index, m.logTerm)} commit=${m.commit} entries=${entryIds(m.entries)}${read}`;
    case "append-resp":
      return m.reject
        ? `${head} rejected index=${m.index} hint=${pos(m.rejectHint, m.logTerm)}${read}`
        : `${head} index=${m.index}${read}`;
    case "heartbeat":
      return `${head} commit=${m.commit}${read}`;
    case "heartbeat-resp":
      return `${head}${read}`;
    case "snapshot": {
      const s = m.snapshot!.meta;
      return `${head} snap=${pos(s.index, s.term)} config: ${config(s.config)}`;
    }
    case "timeout-now":
      return head;
    case "read-index":
      return `${head} id=${m.context}`;
    case "read-index-resp":
      return `${head} id=${m.context}${m.reject ? " rejected" : ` index=${m.index}`}`;
    case "transfer-leader":
      return `${head} target=${m.from}`;
  }
}

/** Orders `n2` before `n10`. */
export function compareIds(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

/** `leader t2`, `follower t2 leader=n1`, `pre-candidate t2`. */
export function roleLine(raw: RawNode): string {
  const r = raw.raft;
  if (r.role === "leader") return `leader t${r.term}`;
  return `${r.role} t${r.term}${r.leader ? ` leader=${r.leader}` : ""}`;
}

/** The `status` command: term, vote, indexes, configuration and, on a leader, its view of each replica. */
export function status(raw: RawNode): string[] {
  const s = raw.status();
  const r = raw.raft;
  const out = [`${s.id}: ${roleLine(raw)} vote=${s.vote || "-"} commit=${s.commit} applied=${s.applied} last=${pos(s.lastIndex, r.log.lastTerm())}`];
  out.push(`  config: ${config(s.config)}`);
  if (s.snapshotIndex) out.push(`  snapshot: ${pos(r.latestSnapshot.index, r.latestSnapshot.term)}`);
  if (r.leadTransferee) out.push(`  transferring leadership to ${r.leadTransferee}`);
  if (r.readRounds.hasPending()) out.push(`  reads waiting for read round ${r.readRounds.current}`);
  for (const id of Object.keys(s.progress).sort(compareIds)) {
    const p = s.progress[id];
    const pr = r.progress.get(id)!;
    const flags = [pr.isPaused() ? "paused" : "", pr.inflightCount() ? `inflight=${pr.inflightCount()}` : "", p.recentActive ? "active" : ""];
    out.push(`  progress ${id}: match=${p.match} next=${p.next} ${p.state} ${flags.filter(Boolean).join(" ")}`.trimEnd());
  }
  return out;
}

/** The `log` command: the in-memory log, marking entries not yet durable. */
export function log(raw: RawNode): string[] {
  const l = raw.raft.log;
  const out = [`${raw.raft.id} log: commit=${l.committed} applied=${l.applied} durable through ${l.stable}`];
  if (l.snapshotIndex) out.push(`  (compacted through ${pos(l.snapshotIndex, l.snapshotTerm)})`);
  for (let i = l.firstIndex(); i <= l.lastIndex(); i++) out.push(`  ${entry(l.entry(i)!)}${i > l.stable ? " (not durable)" : ""}`);
  return out;
}
