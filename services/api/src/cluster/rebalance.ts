// The role rebalancer: which database role each member should hold, decided one
// change at a time from the members' current roles, liveness and failure domains
// and the targets `cluster.max_voters` / `cluster.max_standby`. Pure: the
// coordinator feeds it a snapshot and applies the change it returns through the
// database's AssignRole, then asks again.
//
// Rules (LXD's dqlite "Adjust", with three deliberate differences):
//   - the number of voters wanted is odd (an even count tolerates no more failures
//     than the odd count below it, and needs a bigger quorum): the largest odd number
//     not above max_voters nor the members that could vote; below 3 members, one;
//   - a lowered target is applied at once (LXD 5.0.2 waits for the next join);
//   - failure domains count: new voters come from domains without one, and a voter
//     is moved out of a crowded domain when a domain without a voter has a candidate.
// A change never lowers fault tolerance on the way: replacements are promoted
// before the member they replace is demoted.

export type DatabaseRole = "voter" | "standby" | "spare";

export interface RoleMember {
  /** The member's database node id. */
  id: string;
  role: DatabaseRole;
  /** Answering heartbeats. */
  online: boolean;
  /** "default" when the operator set none. */
  failureDomain: string;
  /** Holds the Raft leadership now. */
  leader: boolean;
  /** Leaving the cluster or evacuated: hand its role off, give it no new one. */
  leaving?: boolean;
}

export interface RoleTargets {
  maxVoters: number;
  maxStandby: number;
}

export interface RoleChange {
  id: string;
  from: DatabaseRole;
  to: DatabaseRole;
  reason: string;
}

/** How many voters the cluster wants given its members. */
export function wantedVoters(members: RoleMember[], targets: RoleTargets): number {
  const couldVote = members.filter((m) => !m.leaving).length;
  if (couldVote < 3) return 1;
  const n = Math.min(targets.maxVoters, couldVote);
  return n % 2 === 1 ? n : n - 1;
}

/** The next role change, or undefined when the roles are where they should be. */
export function nextRoleChange(members: RoleMember[], targets: RoleTargets): RoleChange | undefined {
  if (members.length <= 1) return undefined;
  const usable = (m: RoleMember) => m.online && !m.leaving;
  const voters = members.filter((m) => m.role === "voter");
  const standbys = members.filter((m) => m.role === "standby");
  const usableVoters = voters.filter(usable);
  const usableStandbys = standbys.filter(usable);
  const wanted = wantedVoters(members, targets);
  const wantedStandby = Math.max(0, Math.min(targets.maxStandby, members.filter((m) => !m.leaving).length - wanted));
  const votersPerDomain = countBy(usableVoters, (m) => m.failureDomain);

  // 1. Too few voters that can serve: promote a stand-by (it holds the log) or a spare,
  //    from a failure domain without a voter if there is one.
  if (usableVoters.length < wanted) {
    const candidate = pick(
      members.filter((m) => usable(m) && m.role !== "voter"),
      (m) => [votersPerDomain.get(m.failureDomain) ?? 0, m.role === "standby" ? 0 : 1],
    );
    if (candidate) {
      const reason = voters.length > usableVoters.length ? `replaces ${describeUnusable(voters.filter((m) => !usable(m)))}` : `${usableVoters.length} of ${wanted} voters`;
      return promote(candidate, reason);
    }
  }

  // 2. A voter that cannot serve (offline, leaving) steps down once it is replaced, or
  //    at once when nobody can replace it and enough voters remain to form a quorum
  //    without it. The leader is never demoted here (the coordinator hands leadership
  //    over first).
  const unusable = voters.filter((m) => !usable(m) && !m.leader);
  if (unusable.length && usableVoters.length >= wanted) {
    const m = unusable[0];
    return { id: m.id, from: "voter", to: "spare", reason: `${describeUnusable([m])}, replaced` };
  }

  // 3. More voters than wanted: demote one from the most crowded failure domain.
  if (usableVoters.length > wanted) {
    const m = pick(
      usableVoters.filter((v) => !v.leader),
      (v) => [-(votersPerDomain.get(v.failureDomain) ?? 0)],
    );
    if (m) {
      const to: DatabaseRole = usableStandbys.length < wantedStandby ? "standby" : "spare";
      return { id: m.id, from: "voter", to, reason: `${usableVoters.length} voters, ${wanted} wanted` };
    }
  }

  // 4. Spread: a domain holds two voters while a usable member sits in a domain with
  //    none. Promote it first; step 3 then demotes one of the crowded domain's voters.
  if (usableVoters.length === wanted && [...votersPerDomain.values()].some((n) => n > 1)) {
    const candidate = pick(
      members.filter((m) => usable(m) && m.role !== "voter" && !votersPerDomain.has(m.failureDomain)),
      (m) => [m.role === "standby" ? 0 : 1],
    );
    if (candidate) return promote(candidate, `failure domain ${candidate.failureDomain} has no voter`);
  }

  // 5. Stand-bys: replace the ones that cannot serve, then fill up to the target or trim.
  const offStandby = standbys.find((m) => !usable(m));
  if (offStandby) {
    return { id: offStandby.id, from: "standby", to: "spare", reason: describeUnusable([offStandby]) };
  }
  const domainsHeld = countBy([...usableVoters, ...usableStandbys], (m) => m.failureDomain);
  if (usableStandbys.length < wantedStandby) {
    const m = pick(
      members.filter((x) => usable(x) && x.role === "spare"),
      (x) => [domainsHeld.get(x.failureDomain) ?? 0],
    );
    if (m) return { id: m.id, from: "spare", to: "standby", reason: `${usableStandbys.length} of ${wantedStandby} stand-bys` };
  }
  if (usableStandbys.length > wantedStandby) {
    const m = pick(usableStandbys, (x) => [-(domainsHeld.get(x.failureDomain) ?? 0)]);
    if (m) return { id: m.id, from: "standby", to: "spare", reason: `${usableStandbys.length} stand-bys, ${wantedStandby} wanted` };
  }
  return undefined;
}

/**
 * Towards voter: a spare holds no replica, so it first becomes a stand-by (and
 * receives the log); a later round makes it a voter.
 */
function promote(m: RoleMember, reason: string): RoleChange {
  return m.role === "spare" ? { id: m.id, from: "spare", to: "standby", reason: `${reason}; first a stand-by, to receive the log` } : { id: m.id, from: m.role, to: "voter", reason };
}

function describeUnusable(ms: RoleMember[]): string {
  return ms.map((m) => `${m.id} (${m.leaving ? "leaving" : "offline"})`).join(", ");
}

function countBy<T>(xs: T[], key: (x: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const x of xs) counts.set(key(x), (counts.get(key(x)) ?? 0) + 1);
  return counts;
}

/** The member with the smallest sort key (compared element-wise), ties broken by id. */
function pick(ms: RoleMember[], key: (m: RoleMember) => number[]): RoleMember | undefined {
  let best: RoleMember | undefined;
  let bestKey: number[] = [];
  for (const m of ms) {
    const k = key(m);
    if (!best || compare(k, bestKey) < 0 || (compare(k, bestKey) === 0 && m.id < best.id)) {
      best = m;
      bestKey = k;
    }
  }
  return best;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
