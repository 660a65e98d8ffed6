// GET /1.0/instances with recursion 1 or 2: the rows of the `instances` table, their
// profiles expanded (expand.ts), and what each member's agent says of its instances
// now: ONE ListInstances per member, however many instances it has — brief (name and
// status; the agent reads no record) for recursion=1, with every instance's runtime
// state for recursion=2 — under a short deadline, so an offline or unreachable member
// shows its instances as Error instead of hanging the listing. The members, the
// profiles and the projects come from the gateway's read cache (nothing is written on
// them), and the agents are asked while the rows are read.
import type { InstanceInfo, InstanceStateReply } from "../../../../proto/gen/member.ts";
import type { ReadCache } from "../cache/read-cache.ts";
import type { Database } from "../schema.ts";
import type { MemberClient } from "../../../member/src/agent/client.ts";
import { loadExpander } from "./expand.ts";
import { instanceView, liveStatus, stateView, STOPPED, UNREACHABLE, type InstanceRow, type LiveStatus } from "./instances.ts";
import { cachedLiveMembers, type LiveMember } from "./placement.ts";

/** What a listing asks of the agents (AgentClients: one client per member address). */
export interface ListingAgents {
  get(address: string, quick: boolean): Pick<MemberClient, "listInstances">;
}

export type ListedInstance = ReturnType<typeof instanceView> & { backups?: null; state?: ReturnType<typeof stateView>; snapshots?: null };

/** LXD's api.Instance (recursion=1) or api.InstanceFull (withState: recursion=2) of every row `rows` yields, in order. */
export async function instanceListing(
  ctx: { db: Database; cache: ReadCache },
  agents: ListingAgents,
  rows: Promise<InstanceRow[]>,
  withState: boolean,
): Promise<ListedInstance[]> {
  const membersNow = cachedLiveMembers(ctx.db, ctx.cache);
  // One Promise.all from the start: `rows` has its handler before anything is awaited.
  const [listed, members, seen, expander] = await Promise.all([
    rows,
    membersNow,
    membersNow.then((members) => agentListings(agents, members, withState)),
    ctx.cache.get("expander", ["projects", "profiles"], () => loadExpander(ctx.db)),
  ]);
  const byNode = new Map(members.map((m) => [m.row.nodeId, m]));
  return listed.map((r) => {
    const { live, state } = liveOf(r, seen);
    const view = instanceView(r, live, byNode.get(r.nodeId)?.row.name ?? "", expander(r.project, r.profiles, r.config, r.devices));
    return withState ? { ...view, backups: null, state: stateView(live, state), snapshots: null } : view;
  });
}

/** What each reachable member's agent lists, by node id then agent name (a member absent: offline or unreachable). */
async function agentListings(agents: ListingAgents, members: LiveMember[], withState: boolean): Promise<Map<string, Map<string, InstanceInfo>>> {
  const out = new Map<string, Map<string, InstanceInfo>>();
  await Promise.all(
    members
      .filter((m) => m.status !== "Offline")
      .map(async (m) => {
        try {
          const list = await agents.get(m.row.address, true).listInstances(withState ? { withState } : { brief: true });
          out.set(m.row.nodeId, new Map(list.map((info) => [info.name, info])));
        } catch {
          /* unreachable now: its instances show as Error */
        }
      }),
  );
  return out;
}

/** A row's live status (and state, when listed with it): a row still being created is Stopped; one its agent does not list, Error. */
function liveOf(r: InstanceRow, seen: Map<string, Map<string, InstanceInfo>>): { live: LiveStatus; state?: InstanceStateReply } {
  if (r.power === "CREATING") return { live: STOPPED };
  const info = seen.get(r.nodeId)?.get(r.agentName);
  return info ? { live: liveStatus(info), state: info.state } : { live: UNREACHABLE };
}
