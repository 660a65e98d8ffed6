// The evacuation planner, pure: given the member to evacuate (or restore), the
// instances and the other members, decide what happens to each instance and where it
// goes — before anything is touched, so a plan that cannot be carried out fails
// whole ("nothing half-done"). The coordinator stores the plan and executes its
// steps with bounded concurrency; this file decides, it does not act.
//
// Per instance, the mode is the request's `mode`, else its `cluster.evacuate`, else
// `auto`:
//   stop          stop it in place (restore starts it again if it was running);
//   migrate       move it: relocate on shared storage, copy on local storage;
//   live-migrate  containers cannot be live-migrated: moved cold, as LXD does (stop,
//                 move, start), and the step says so;
//   auto          move it when a member can take it, else stop it in place.
// Targets come from the default placement policy, counting each planned move, so
// instances spread over the members instead of piling onto the emptiest one.
import { filterCandidates, rankCandidates, type PolicyMember } from "../policy/index.ts";

export type EvacuationMode = "auto" | "stop" | "migrate" | "live-migrate";
export const EVACUATION_MODES: readonly EvacuationMode[] = ["auto", "stop", "migrate", "live-migrate"];

export interface PlannedInstance {
  project: string;
  name: string;
  /** The member it is on now. */
  location: string;
  running: boolean;
  architecture: string;
  type: "container" | "virtual-machine";
  /** On a pool every member mounts (relocation without copying). */
  sharedStorage: boolean;
  /** Instance config: cluster.evacuate, volatile.evacuate.origin, volatile.last_state.power. */
  config: Record<string, string>;
}

export type StepAction =
  | "relocate" // shared storage: the target takes it over, nothing is copied
  | "copy" // local storage: the root filesystem is streamed to the target
  | "stop" // stays where it is, stopped
  | "start"; // restore: start it where it is

export interface EvacuationStep {
  project: string;
  name: string;
  action: StepAction;
  /** Where it goes (relocate/copy). */
  target?: string;
  /** Stop it before the action (it is running). */
  stopFirst: boolean;
  /** Start it after the action (it was running). */
  startAfter: boolean;
  /** volatile.evacuate.origin after the step ("" = cleared). */
  origin: string;
  /** Why, in words for the operation's progress and the logs. */
  reason: string;
}

export type Plan = { ok: true; steps: EvacuationStep[] } | { ok: false; status: 400 | 404 | 409; error: string };

export interface EvacuationInput {
  member: string;
  /** The evacuated member's state as the cluster records it. */
  memberStatus: "ONLINE" | "OFFLINE" | "EVACUATED";
  mode?: string;
  /** Instances on the member being evacuated. */
  instances: PlannedInstance[];
  /** Every member of the cluster (the evacuated one included; it is skipped). */
  members: PolicyMember[];
  /**
   * Chooses among the candidates the rules allow (best first) instead of the default
   * policy: the placement scriptlet with reason `evacuation`. A chosen member that is
   * not a candidate, or an error, fails the whole plan.
   */
  chooseTarget?(inst: PlannedInstance, candidates: readonly PolicyMember[]): { target: string } | { error: string };
}

function effectiveMode(mode: string | undefined, inst: PlannedInstance): EvacuationMode | string {
  return mode || inst.config["cluster.evacuate"] || "auto";
}

export function planEvacuation(input: EvacuationInput): Plan {
  if (input.memberStatus === "EVACUATED") return { ok: false, status: 400, error: "Cluster member is already evacuated" };
  if (input.memberStatus === "OFFLINE") return { ok: false, status: 400, error: "Cluster member is offline: it cannot stop or send its instances" };
  if (input.mode && !EVACUATION_MODES.includes(input.mode as EvacuationMode)) {
    return { ok: false, status: 400, error: `Invalid evacuation mode "${input.mode}" (not one of ${EVACUATION_MODES.join(", ")})` };
  }
  // The evacuated member takes nothing; planned moves count as instances on their target.
  const members = input.members.map((m) => ({ ...m, status: m.name === input.member ? ("EVACUATED" as const) : m.status }));
  const steps: EvacuationStep[] = [];
  const ordered = [...input.instances].sort((a, b) => (a.project + "/" + a.name < b.project + "/" + b.name ? -1 : 1));
  for (const inst of ordered) {
    const mode = effectiveMode(input.mode, inst);
    if (!EVACUATION_MODES.includes(mode as EvacuationMode)) {
      return { ok: false, status: 400, error: `Instance "${inst.name}" in project "${inst.project}": Invalid value "${mode}" for cluster.evacuate (not one of ${EVACUATION_MODES.join(", ")})` };
    }
    // Where it first came from survives a second evacuation; one that stays keeps its own.
    const origin = inst.config["volatile.evacuate.origin"] || input.member;
    const staysOrigin = inst.config["volatile.evacuate.origin"] ?? "";
    if (mode === "stop") {
      steps.push({ project: inst.project, name: inst.name, action: "stop", stopFirst: inst.running, startAfter: false, origin: staysOrigin, reason: `${input.mode ? "mode" : "cluster.evacuate"}=stop: stopped in place` });
      continue;
    }
    const r = filterCandidates(members, { architecture: inst.architecture, project: { name: inst.project } });
    const ranked = r.ok ? rankCandidates(r.candidates, members) : [];
    let target = ranked[0];
    if (target && input.chooseTarget) {
      const choice = input.chooseTarget(inst, ranked);
      if ("error" in choice) return { ok: false, status: 400, error: `Instance placement scriptlet failed for "${inst.name}" in project "${inst.project}": ${choice.error}` };
      target = ranked.find((m) => m.name === choice.target)!;
      if (!target) return { ok: false, status: 400, error: `Instance placement scriptlet chose "${choice.target}" for "${inst.name}", which cannot take it` };
    }
    if (!target) {
      if (mode === "auto") {
        steps.push({ project: inst.project, name: inst.name, action: "stop", stopFirst: inst.running, startAfter: false, origin: staysOrigin, reason: "no member can take it: stopped in place" });
        continue;
      }
      return { ok: false, status: 409, error: `No cluster member can take instance "${inst.name}" in project "${inst.project}" (${mode}): ${r.ok ? "no candidate" : r.error}` };
    }
    target.instances += 1;
    target.project_instances = (target.project_instances ?? 0) + 1;
    const action: StepAction = inst.sharedStorage ? "relocate" : "copy";
    const how = inst.sharedStorage ? "relocated (shared storage)" : "copied (local storage)";
    const live = mode === "live-migrate" && inst.type === "container" ? "; containers cannot be live-migrated, so it moves stopped and starts again" : "";
    steps.push({ project: inst.project, name: inst.name, action, target: target.name, stopFirst: inst.running, startAfter: inst.running, origin, reason: `${how} to ${target.name}${live}` });
  }
  return { ok: true, steps };
}

export interface RestoreInput {
  member: string;
  memberStatus: "ONLINE" | "OFFLINE" | "EVACUATED";
  /** Every instance of the cluster (those that came from the member are picked out). */
  instances: PlannedInstance[];
}

/**
 * Restore: exactly the instances whose origin is the member come back (and start if
 * they were running); instances stopped in place start again if they were running.
 */
export function planRestore(input: RestoreInput): Plan {
  if (input.memberStatus !== "EVACUATED") return { ok: false, status: 400, error: "Cluster member is already restored" };
  const steps: EvacuationStep[] = [];
  const ordered = [...input.instances].sort((a, b) => (a.project + "/" + a.name < b.project + "/" + b.name ? -1 : 1));
  for (const inst of ordered) {
    if (inst.location === input.member) {
      if (!inst.running && inst.config["volatile.last_state.power"] === "RUNNING") {
        steps.push({ project: inst.project, name: inst.name, action: "start", stopFirst: false, startAfter: true, origin: "", reason: "was running before the evacuation" });
      }
      continue;
    }
    if (inst.config["volatile.evacuate.origin"] !== input.member) continue;
    const action: StepAction = inst.sharedStorage ? "relocate" : "copy";
    steps.push({
      project: inst.project,
      name: inst.name,
      action,
      target: input.member,
      stopFirst: inst.running,
      startAfter: inst.running,
      origin: "",
      reason: `back from ${inst.location} (${inst.sharedStorage ? "relocated" : "copied"})`,
    });
  }
  return { ok: true, steps };
}
