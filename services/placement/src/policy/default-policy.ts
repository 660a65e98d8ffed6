// The default placement policy, pure: which members may take a new instance, and
// which one does. LXD's rules (../shared/reference/lxd-clustering.md §9.1-9.2):
// online and not evacuated, `scheduler.instance` (manual members only take
// instances targeted at them; group members only when targeted at one of their
// groups), `--target` member or `@group`, the project's `restricted.cluster.groups`,
// and the architecture. Then the fewest instances; Shoal adds a spread across
// failure domains before the name tie-break.

export type MemberStatus = "ONLINE" | "OFFLINE" | "EVACUATED";

export interface PolicyMember {
  name: string;
  status: MemberStatus;
  architecture: string;
  /** "default" when the member has none (as LXD shows it). */
  failure_domain: string;
  groups: string[];
  /** Member config; `scheduler.instance` is all (default), group or manual. */
  config: Record<string, string>;
  /** Instances on the member, plus instance creations in flight towards it. */
  instances: number;
  /** Instances of the request's project on the member (for the failure-domain spread). */
  project_instances?: number;
}

export interface PolicyProject {
  name: string;
  /** `restricted.cluster.groups`, split on commas; applies to automatic placement too. */
  restricted_cluster_groups?: string[];
  /** `restricted.cluster.target`; "block" refuses `--target` for non-admin callers. */
  restricted_cluster_target?: "allow" | "block";
}

export interface PolicyRequest {
  /** Architecture of the image or source instance; absent = no architecture filter. */
  architecture?: string;
  /** `--target`: a member name, or "@group". */
  target?: string;
  project: PolicyProject;
  /** The caller may target members despite `restricted.cluster.target=block`. */
  admin?: boolean;
  /** Every cluster group name (a group may exist with no member in it). */
  cluster_groups?: string[];
}

export interface PolicyError {
  /** HTTP status the gateway answers with. */
  status: 400 | 403 | 404;
  error: string;
}

export type CandidateResult = { ok: true; candidates: PolicyMember[]; targeted: boolean } | ({ ok: false } & PolicyError);

export type PlacementDecision =
  | { ok: true; member: string; candidates: PolicyMember[] }
  | ({ ok: false } & PolicyError);

/** Architectures a member of the given architecture can run (LXD's personalities). */
const PERSONALITIES: ReadonlyMap<string, readonly string[]> = new Map([
  ["x86_64", ["i686"]],
  ["aarch64", ["armv7l"]],
  ["ppc64", ["ppc"]],
  ["s390x", ["s390"]],
]);

export function supportsArchitecture(memberArch: string, wanted: string): boolean {
  return memberArch === wanted || (PERSONALITIES.get(memberArch)?.includes(wanted) ?? false);
}

function schedulerMode(m: PolicyMember): "all" | "group" | "manual" {
  const v = Object.prototype.hasOwnProperty.call(m.config, "scheduler.instance") ? m.config["scheduler.instance"] : "";
  return v === "manual" || v === "group" ? v : "all";
}

const fail = (status: PolicyError["status"], error: string): { ok: false } & PolicyError => ({ ok: false, status, error });

/** The members a request may be placed on, or why there are none. */
export function filterCandidates(members: readonly PolicyMember[], request: PolicyRequest): CandidateResult {
  const allowed = request.project.restricted_cluster_groups?.filter((g) => g !== "") ?? [];
  const inAllowed = (m: PolicyMember) => allowed.length === 0 || m.groups.some((g) => allowed.includes(g));
  const target = request.target ?? "";

  if (target !== "" && request.project.restricted_cluster_target === "block" && !request.admin) {
    return fail(403, "This project doesn't allow cluster member targeting");
  }

  if (target !== "" && !target.startsWith("@")) {
    // An explicit member: LXD skips scheduler.instance; Shoal also refuses members
    // that cannot run anything now, as latest LXD does.
    const m = members.find((x) => x.name === target);
    if (!m) return fail(404, "Cluster member not found");
    if (!inAllowed(m)) return fail(403, "Project isn't allowed to use this cluster member");
    if (m.status === "OFFLINE") return fail(400, "Target cluster member is offline");
    if (m.status === "EVACUATED") return fail(400, "Target cluster member is evacuated");
    if (request.architecture && !supportsArchitecture(m.architecture, request.architecture)) {
      return fail(400, `Target cluster member doesn't support architecture "${request.architecture}"`);
    }
    return { ok: true, candidates: [m], targeted: true };
  }

  let group: string | undefined;
  if (target.startsWith("@")) {
    group = target.slice(1);
    const known = request.cluster_groups ?? members.flatMap((m) => m.groups);
    if (!known.includes(group)) return fail(400, `Cluster group "${group}" doesn't exist`);
    if (allowed.length > 0 && !allowed.includes(group)) return fail(403, "Project isn't allowed to use this cluster group");
  }

  const candidates = members.filter((m) => {
    if (m.status !== "ONLINE") return false;
    const mode = schedulerMode(m);
    if (mode === "manual") return false;
    if (mode === "group" && (group === undefined || !m.groups.includes(group))) return false;
    if (group !== undefined && !m.groups.includes(group)) return false;
    if (!inAllowed(m)) return false;
    if (request.architecture && !supportsArchitecture(m.architecture, request.architecture)) return false;
    return true;
  });
  if (candidates.length === 0) return fail(400, "No suitable cluster member could be found");
  return { ok: true, candidates, targeted: group !== undefined };
}

/**
 * Order candidates best first: fewest instances; then the failure domain holding
 * fewer of the project's instances (counted over every member given, so instances
 * on members that are not candidates still count for their domain); then by name.
 */
export function rankCandidates(candidates: readonly PolicyMember[], allMembers: readonly PolicyMember[] = candidates): PolicyMember[] {
  const domainLoad = new Map<string, number>();
  for (const m of allMembers) {
    domainLoad.set(m.failure_domain, (domainLoad.get(m.failure_domain) ?? 0) + (m.project_instances ?? 0));
  }
  for (const m of candidates) if (!domainLoad.has(m.failure_domain)) domainLoad.set(m.failure_domain, m.project_instances ?? 0);
  return [...candidates].sort((a, b) =>
    a.instances - b.instances ||
    domainLoad.get(a.failure_domain)! - domainLoad.get(b.failure_domain)! ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Filter and choose in one step: the default policy when no scriptlet is set. */
export function placeInstance(members: readonly PolicyMember[], request: PolicyRequest): PlacementDecision {
  const r = filterCandidates(members, request);
  if (!r.ok) return r;
  const ranked = rankCandidates(r.candidates, members);
  return { ok: true, member: ranked[0].name, candidates: ranked };
}
