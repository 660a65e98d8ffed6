// The initial state of a brand-new group. Every founding member starts from the
// same log: one committed conf entry per founder, so the configuration is carried
// by the log itself and any node that later replicates it learns the founders.

import { encodeConfChange } from "./confchange.ts";
import type { InitialState } from "./raft.ts";
import type { NodeId } from "./types.ts";

export function bootstrapState(founders: { id: NodeId; address: string }[]): InitialState {
  const entries = founders.map((f, i) => ({
    index: i + 1,
    term: 1,
    type: "conf" as const,
    data: encodeConfChange({ op: "set-role", id: f.id, role: "voter", address: f.address }),
  }));
  return {
    hardState: { term: 1, vote: "", commit: entries.length },
    snapshot: { index: 0, term: 0, config: { members: {} } },
    entries,
  };
}

/** A node that will join an existing group: it knows nothing until the leader contacts it. */
export function joinerState(): InitialState {
  return {
    hardState: { term: 0, vote: "", commit: 0 },
    snapshot: { index: 0, term: 0, config: { members: {} } },
    entries: [],
  };
}
