// Scenarios for the default placement policy (no scriptlet).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  filterCandidates, placeInstance, rankCandidates, supportsArchitecture, type PolicyMember, type PolicyRequest,
} from "../src/policy/index.ts";

function m(name: string, extra: Partial<PolicyMember> = {}): PolicyMember {
  return {
    name, status: "ONLINE", architecture: "x86_64", failure_domain: "default", groups: ["default"], config: {},
    instances: 0, project_instances: 0, ...extra,
  };
}
const req = (extra: Partial<PolicyRequest> = {}): PolicyRequest => ({ project: { name: "default" }, ...extra });
const names = (ms: PolicyMember[]) => ms.map((x) => x.name);

test("fewest instances wins; ties break by name, whatever the input order", () => {
  const members = [m("n3", { instances: 2 }), m("n2", { instances: 1 }), m("n1", { instances: 1 })];
  const d = placeInstance(members, req());
  assert.deepEqual(d.ok && [d.member, names(d.candidates)], ["n1", ["n1", "n2", "n3"]]);
  const reversed = placeInstance([...members].reverse(), req());
  assert.ok(reversed.ok && reversed.member === "n1");
});

test("equal counts: the failure domain holding fewer of the project's instances is preferred", () => {
  const members = [
    m("a1", { failure_domain: "rack-a", instances: 3, project_instances: 2 }),
    m("a2", { failure_domain: "rack-a", instances: 3, project_instances: 1 }),
    m("b1", { failure_domain: "rack-b", instances: 3, project_instances: 1 }),
    // Offline, but its instances still count for rack-b's load.
    m("b2", { failure_domain: "rack-b", instances: 9, project_instances: 1, status: "OFFLINE" }),
    m("c1", { failure_domain: "rack-c", instances: 4, project_instances: 0 }),
  ];
  const d = placeInstance(members, req());
  // rack-a holds 3 of the project's instances, rack-b 2: b1 wins the tie on count 3.
  assert.ok(d.ok);
  assert.deepEqual(names(d.candidates), ["b1", "a1", "a2", "c1"]);
  assert.equal(d.member, "b1");
  // Fewest instances still comes first: c1 would win with 2 instances.
  const lighter = placeInstance(members.map((x) => (x.name === "c1" ? { ...x, instances: 2 } : x)), req());
  assert.ok(lighter.ok && lighter.member === "c1");
});

test("offline and evacuated members are never automatic candidates", () => {
  const members = [m("n1", { status: "OFFLINE" }), m("n2", { status: "EVACUATED" }), m("n3", { instances: 50 })];
  const d = placeInstance(members, req());
  assert.ok(d.ok && d.member === "n3" && d.candidates.length === 1);
  assert.deepEqual(placeInstance(members.slice(0, 2), req()), { ok: false, status: 400, error: "No suitable cluster member could be found" });
});

test("scheduler.instance=manual members take only instances targeted at them", () => {
  const members = [m("n1", { config: { "scheduler.instance": "manual" } }), m("n2", { instances: 10 })];
  const auto = placeInstance(members, req());
  assert.ok(auto.ok && auto.member === "n2");
  const targeted = placeInstance(members, req({ target: "n1" }));
  assert.ok(targeted.ok && targeted.member === "n1");
  // Not even through a group they belong to.
  const grouped = placeInstance([m("n1", { config: { "scheduler.instance": "manual" }, groups: ["g1"] })], req({ target: "@g1" }));
  assert.deepEqual(grouped, { ok: false, status: 400, error: "No suitable cluster member could be found" });
});

test("scheduler.instance=group members take instances only when targeted at one of their groups", () => {
  const members = [
    m("n1", { config: { "scheduler.instance": "group" }, groups: ["default", "gpu"] }),
    m("n2", { groups: ["default"], instances: 5 }),
    m("n3", { groups: ["gpu"], instances: 5 }),
  ];
  const auto = placeInstance(members, req());
  assert.ok(auto.ok && auto.member === "n2" && !names(auto.candidates).includes("n1"));
  const gpu = placeInstance(members, req({ target: "@gpu" }));
  assert.ok(gpu.ok);
  assert.deepEqual(names(gpu.candidates), ["n1", "n3"]);
  assert.equal(gpu.member, "n1");
  // n1 is in "default" too, so a target of @default also makes it a candidate.
  const dflt = placeInstance(members, req({ target: "@default" }));
  assert.ok(dflt.ok);
  assert.deepEqual(names(dflt.candidates), ["n1", "n2"]);
});

test("an explicit target member: unknown, offline and evacuated are refused in LXD's words", () => {
  const members = [m("n1"), m("n2", { status: "OFFLINE" }), m("n3", { status: "EVACUATED" }), m("n4", { architecture: "aarch64" })];
  assert.deepEqual(placeInstance(members, req({ target: "n9" })), { ok: false, status: 404, error: "Cluster member not found" });
  assert.deepEqual(placeInstance(members, req({ target: "n2" })), { ok: false, status: 400, error: "Target cluster member is offline" });
  assert.deepEqual(placeInstance(members, req({ target: "n3" })), { ok: false, status: 400, error: "Target cluster member is evacuated" });
  assert.deepEqual(placeInstance(members, req({ target: "n4", architecture: "x86_64" })),
    { ok: false, status: 400, error: 'Target cluster member doesn\'t support architecture "x86_64"' });
  const ok = filterCandidates(members, req({ target: "n1" }));
  assert.ok(ok.ok && ok.targeted && names(ok.candidates).join() === "n1");
});

test("group targets: unknown group, empty group and only the group's members", () => {
  const members = [m("n1", { groups: ["default", "g1"], instances: 3 }), m("n2", { groups: ["default"] })];
  assert.deepEqual(placeInstance(members, req({ target: "@nope" })), { ok: false, status: 400, error: 'Cluster group "nope" doesn\'t exist' });
  assert.deepEqual(placeInstance(members, req({ target: "@empty", cluster_groups: ["default", "g1", "empty"] })),
    { ok: false, status: 400, error: "No suitable cluster member could be found" });
  const g1 = placeInstance(members, req({ target: "@g1" }));
  assert.ok(g1.ok && g1.member === "n1");
});

test("restricted.cluster.groups limits automatic and targeted placement", () => {
  const members = [m("n1", { groups: ["default"] }), m("n2", { groups: ["tenant"], instances: 7 })];
  const project = { name: "p1", restricted_cluster_groups: ["tenant"] };
  const auto = placeInstance(members, req({ project }));
  assert.ok(auto.ok && auto.member === "n2" && auto.candidates.length === 1);
  assert.deepEqual(placeInstance(members, req({ project, target: "n1" })),
    { ok: false, status: 403, error: "Project isn't allowed to use this cluster member" });
  assert.deepEqual(placeInstance(members, req({ project, target: "@default" })),
    { ok: false, status: 403, error: "Project isn't allowed to use this cluster group" });
});

test("restricted.cluster.target=block refuses targeting for non-admins only", () => {
  const members = [m("n1"), m("n2")];
  const project = { name: "p1", restricted_cluster_target: "block" as const };
  assert.deepEqual(placeInstance(members, req({ project, target: "n2" })),
    { ok: false, status: 403, error: "This project doesn't allow cluster member targeting" });
  const admin = placeInstance(members, req({ project, target: "n2", admin: true }));
  assert.ok(admin.ok && admin.member === "n2");
  const auto = placeInstance(members, req({ project }));
  assert.ok(auto.ok && auto.member === "n1");
});

test("architecture: members match their own architecture and its personalities", () => {
  const members = [m("arm", { architecture: "aarch64" }), m("x86", { architecture: "x86_64", instances: 4 })];
  const i686 = placeInstance(members, req({ architecture: "i686" }));
  assert.ok(i686.ok && i686.member === "x86");
  const armv7 = placeInstance(members, req({ architecture: "armv7l" }));
  assert.ok(armv7.ok && armv7.member === "arm");
  assert.deepEqual(placeInstance(members, req({ architecture: "riscv64" })),
    { ok: false, status: 400, error: "No suitable cluster member could be found" });
  assert.equal(supportsArchitecture("i686", "x86_64"), false);
});

test("placing several instances in turn spreads them over members and failure domains", () => {
  const members = [
    m("a1", { failure_domain: "rack-a" }), m("a2", { failure_domain: "rack-a" }),
    m("b1", { failure_domain: "rack-b" }), m("b2", { failure_domain: "rack-b" }),
  ];
  const placed: string[] = [];
  for (let i = 0; i < 8; i++) {
    const d = placeInstance(members, req());
    assert.ok(d.ok);
    placed.push(d.member);
    const chosen = members.find((x) => x.name === d.member)!;
    chosen.instances++;
    chosen.project_instances = (chosen.project_instances ?? 0) + 1;
  }
  // Alternates racks: a1, b1, a2, b2, then again.
  assert.deepEqual(placed, ["a1", "b1", "a2", "b2", "a1", "b1", "a2", "b2"]);
});

test("rankCandidates does not change its input", () => {
  const input = [m("b", { instances: 1 }), m("a", { instances: 2 })];
  assert.deepEqual(names(rankCandidates(input)), ["b", "a"]);
  assert.deepEqual(names(input), ["b", "a"]);
});
