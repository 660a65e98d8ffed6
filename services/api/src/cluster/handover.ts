// Handing a member's database role off before it goes (removal, graceful stop):
// the rebalancer is asked with that member marked as leaving, and its changes are
// applied until the member holds no vote and no replica anyone counts on. A
// replacement is promoted before the leaving member is demoted, so the cluster's
// fault tolerance never dips on the way.
import { Role } from "../../../../proto/gen/raft.ts";
import { readStoredConfig } from "../config.ts";
import type { Database } from "../schema.ts";
import { databaseRole, listMembers, PROTO_ROLE, roleMembers } from "./members.ts";
import { nextRoleChange } from "./rebalance.ts";
import { clusterSettings } from "./settings.ts";

/**
 * Moves `nodeId`'s role to others; returns true once it is a spare (or was one).
 * Gives up at `deadline` (the caller decides whether to go on regardless).
 */
export async function handOver(db: Database, nodeId: string, deadline: number, log: (line: string) => void = () => undefined): Promise<boolean> {
  for (let step = 0; step < 10 && Date.now() < deadline; step++) {
    let status = await db.status();
    if (databaseRole(status, nodeId) === "spare") return true;
    if (status.leader === nodeId) {
      await db.transferLeadership();
      status = await db.status();
    }
    const settings = clusterSettings(await readStoredConfig(db));
    const members = roleMembers(await listMembers(db), status, settings.offlineThresholdMs, { leaving: nodeId });
    const change = nextRoleChange(members, settings);
    if (!change) {
      // Nobody can take over (too few members): the leaving member steps down anyway
      // unless it is the last voter.
      const voters = members.filter((m) => m.role === "voter");
      if (voters.length === 1 && voters[0].id === nodeId) return false;
      await db.assignRole(nodeId, Role.SPARE);
      log(`${nodeId}: -> spare (leaving, no replacement needed)`);
      continue;
    }
    log(`${change.id}: ${change.from} -> ${change.to} (${change.reason})`);
    await db.assignRole(change.id, PROTO_ROLE[change.to]);
  }
  return databaseRole(await db.status(), nodeId) === "spare";
}
