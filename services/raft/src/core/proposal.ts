// What a leader accepts into its log: commands and membership changes.

import { checkConfChange, encodeConfChange } from "./confchange.ts";
import type { ConfChange } from "./confchange.ts";
import type { ProposeResult, Raft } from "./raft.ts";

export function propose(r: Raft, data: Uint8Array): ProposeResult {
  const refused = refuse(r);
  if (refused) return refused;
  r.appendEntries([{ index: 0, term: 0, type: "normal", data }]);
  return { ok: true, index: r.log.lastIndex(), term: r.term };
}

/**
 * One membership change at a time, and none before the leader has committed an
 * entry of its own term (pendingConfIndex starts at its no-op): together these
 * keep single-server changes safe across leader changes.
 */
export function proposeConfChange(r: Raft, cc: ConfChange): ProposeResult {
  const refused = refuse(r);
  if (refused) return refused;
  if (r.pendingConfIndex > r.log.committed) {
    return { ok: false, error: "another membership change is in progress", leader: r.leader };
  }
  const problem = checkConfChange(r.config, cc);
  if (problem) return { ok: false, error: problem, leader: r.leader };
  if (cc.id === r.id && (cc.op === "remove" || cc.role !== "voter")) {
    return { ok: false, error: "transfer leadership away before demoting or removing the leader", leader: r.leader };
  }
  r.appendEntries([{ index: 0, term: 0, type: "conf", data: encodeConfChange(cc) }]);
  r.pendingConfIndex = r.log.lastIndex();
  return { ok: true, index: r.log.lastIndex(), term: r.term };
}

function refuse(r: Raft): ProposeResult | undefined {
  if (r.role !== "leader") return { ok: false, error: "not the leader", leader: r.leader };
  if (r.leadTransferee) return { ok: false, error: "leadership transfer in progress", leader: r.leader };
  return undefined;
}
