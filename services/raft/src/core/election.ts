// Leader election: pre-vote, votes and their tallies (Raft §5.2, thesis §9.6).

import { voteResult } from "./quorum.ts";
import type { Raft } from "./raft.ts";
import type { Message } from "./types.ts";

export type CampaignKind = "pre-vote" | "election" | "transfer";

export function campaign(r: Raft, kind: CampaignKind): void {
  if (!r.promotable()) return;
  let term: number;
  if (kind === "pre-vote") {
    r.becomePreCandidate();
    // Ask as if for the next term, without moving to it.
    term = r.term + 1;
  } else {
    r.becomeCandidate();
    term = r.term;
  }
  const type = kind === "pre-vote" ? "prevote" : "vote";
  if (kind === "pre-vote") {
    r.votes.set(r.id, true);
    // A single voter wins its pre-vote alone.
    if (voteResult(r.voters(), r.votes) === "won") return campaign(r, "election");
  }
  // Our own vote in the new term counts only once it is durable (selfVoteDurable):
  // a single voter would otherwise lead a term it forgets in a crash, and could
  // lead that same term again after restarting, with different entries.
  for (const id of r.voters()) {
    if (id === r.id) continue;
    const m = r.message(type, id);
    m.term = term;
    m.index = r.log.lastIndex();
    m.logTerm = r.log.lastTerm();
    if (kind === "transfer") m.transfer = true;
    r.send(m);
  }
}

export function handleVoteRequest(r: Raft, m: Message): void {
  const pre = m.type === "prevote";
  // We can vote for whom we already voted for (a retransmission), for anyone if we
  // have neither voted nor know a leader this term, and, for a pre-vote, for any
  // future term (a pre-vote promises nothing).
  const canVote =
    r.vote === m.from || (r.vote === "" && r.leader === "") || (pre && m.term > r.term);
  const grant = canVote && r.log.isUpToDate(m.index, m.logTerm);
  const resp = r.message(pre ? "prevote-resp" : "vote-resp", m.from);
  if (grant) {
    // A granted pre-vote answers in the asked term so the pre-candidate counts it.
    resp.term = m.term;
    if (!pre) {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else {
    resp.reject = true;
  }
  r.send(resp);
}

export function handleVoteResponse(r: Raft, m: Message): void {
  const expected = r.role === "pre-candidate" ? "prevote-resp" : "vote-resp";
  if (m.type !== expected) return;
  r.votes.set(m.from, !m.reject);
  switch (voteResult(r.voters(), r.votes)) {
    case "won":
      if (r.role === "pre-candidate") campaign(r, "election");
      else r.becomeLeader();
      return;
    case "lost":
      // Stay in our term; whoever is ahead will contact us.
      r.becomeFollower(r.term, "");
      return;
  }
}

/** The driver made our vote for ourselves durable: count it. */
export function selfVoteDurable(r: Raft): void {
  if (r.role !== "candidate" || r.vote !== r.id || r.durableTerm !== r.term) return;
  r.votes.set(r.id, true);
  if (voteResult(r.voters(), r.votes) === "won") r.becomeLeader();
}
