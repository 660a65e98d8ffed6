// Leadership transfer (thesis §3.10): the leader brings the target's log up to
// date, then tells it to campaign at once with TimeoutNow. Proposals are refused
// meanwhile; a transfer that does not finish within an election timeout is dropped.

import type { Raft } from "./raft.ts";
import * as replication from "./replication.ts";
import type { NodeId } from "./types.ts";

export function transferLeadership(r: Raft, to: NodeId): void {
  if (r.role !== "leader") {
    if (r.leader) {
      // As in etcd, a transfer request names its target in `from`.
      const m = r.message("transfer-leader", r.leader);
      m.from = to;
      r.send(m);
    }
    return;
  }
  if (to === r.id || r.config.members[to]?.role !== "voter") return;
  if (r.leadTransferee === to) return;
  r.leadTransferee = to;
  r.electionElapsed = 0;
  const pr = r.progress.get(to)!;
  if (pr.match === r.log.lastIndex()) r.send(r.message("timeout-now", to));
  else replication.sendAppend(r, to);
}

/** Leader: the transfer target has caught up; hand over. */
export function maybeSendTimeoutNow(r: Raft, from: NodeId): void {
  const pr = r.progress.get(from);
  if (r.role === "leader" && from === r.leadTransferee && pr && pr.match === r.log.lastIndex()) {
    r.send(r.message("timeout-now", from));
  }
}
