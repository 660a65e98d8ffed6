// Majority arithmetic over the voters of a configuration. Standbys and spares never count.

import type { NodeId } from "./types.ts";

export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** The highest index that a majority of voters has reached (0 with no voters). */
export function quorumIndex(voters: readonly NodeId[], reached: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const values = voters.map(reached).sort((a, b) => b - a);
  return values[majority(voters.length) - 1];
}

export type VoteResult = "won" | "lost" | "pending";

/** Tallies granted/refused votes among voters; votes from non-voters are ignored. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let refused = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) refused++;
  }
  const q = majority(voters.length);
  if (granted >= q) return "won";
  if (refused > voters.length - q) return "lost";
  return "pending";
}
