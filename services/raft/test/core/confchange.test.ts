// Membership changes (confchange.ts): what may be proposed, and what applying does.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  applyConfChange,
  checkConfChange,
  cloneConfig,
  decodeConfChange,
  encodeConfChange,
  replicas,
  voters,
} from "../../src/core/confchange.ts";
import type { ConfChange } from "../../src/core/confchange.ts";
import type { Config, Role } from "../../src/core/types.ts";

function config(members: Record<string, Role>): Config {
  const out: Config = { members: {} };
  for (const [id, role] of Object.entries(members)) out.members[id] = { role, address: `${id}:8443` };
  return out;
}

const three = config({ n1: "voter", n2: "voter", n3: "voter", n4: "standby", n5: "spare" });
const alone = config({ n1: "voter", n4: "standby" });

test("removing or demoting the last voter is refused", () => {
  assert.equal(checkConfChange(alone, { op: "remove", id: "n1" }), 'cannot remove the last voter "n1"');
  for (const role of ["standby", "spare"] as const) {
    assert.equal(checkConfChange(alone, { op: "set-role", id: "n1", role, address: "" }), 'cannot demote the last voter "n1"');
  }
  // With other voters left it is fine, and so is anything done to non-voters.
  assert.equal(checkConfChange(three, { op: "remove", id: "n1" }), undefined);
  assert.equal(checkConfChange(three, { op: "set-role", id: "n1", role: "standby", address: "" }), undefined);
  assert.equal(checkConfChange(alone, { op: "remove", id: "n4" }), undefined);
  assert.equal(checkConfChange(alone, { op: "set-role", id: "n1", role: "voter", address: "" }), undefined);
});

test("changes to unknown nodes: removal refused, addition needs an address", () => {
  assert.equal(checkConfChange(three, { op: "remove", id: "n9" }), 'unknown node "n9"');
  assert.equal(checkConfChange(three, { op: "set-role", id: "n9", role: "standby", address: "" }), 'new node "n9" needs an address');
  assert.equal(checkConfChange(three, { op: "set-role", id: "n9", role: "standby", address: "n9:8443" }), undefined);
  // A known node keeps its address when none is given.
  assert.equal(checkConfChange(three, { op: "set-role", id: "n4", role: "voter", address: "" }), undefined);
  assert.equal(checkConfChange(three, { op: "set-role", id: "", role: "voter", address: "x" }), "node id is empty");
});

test("an unknown role is refused", () => {
  // What a decoder of untrusted input could hand over.
  const cc = JSON.parse('{"op":"set-role","id":"n4","role":"leader","address":""}') as ConfChange;
  assert.equal(checkConfChange(three, cc), 'unknown role "leader"');
});

test("applyConfChange returns a new configuration and leaves the old one alone", () => {
  const before = cloneConfig(three);
  const promoted = applyConfChange(three, { op: "set-role", id: "n4", role: "voter", address: "" });
  assert.deepEqual(promoted.members.n4, { role: "voter", address: "n4:8443" }, "the address is kept");
  const moved = applyConfChange(three, { op: "set-role", id: "n4", role: "standby", address: "new:1" });
  assert.equal(moved.members.n4.address, "new:1");
  const removed = applyConfChange(three, { op: "remove", id: "n2" });
  assert.equal(removed.members.n2, undefined);
  const added = applyConfChange(three, { op: "set-role", id: "n9", role: "spare", address: "n9:1" });
  assert.deepEqual(added.members.n9, { role: "spare", address: "n9:1" });
  assert.deepEqual(three, before);
});

test("voters and replicas: sorted, standbys replicate, spares hold nothing", () => {
  assert.deepEqual(voters(three), ["n1", "n2", "n3"]);
  assert.deepEqual(replicas(three), ["n1", "n2", "n3", "n4"]);
  assert.deepEqual(voters({ members: {} }), []);
});

test("conf changes survive encoding; unknown operations are rejected on decode", () => {
  const changes: ConfChange[] = [
    { op: "set-role", id: "n4", role: "standby", address: "n4:8443" },
    { op: "remove", id: "n3" },
  ];
  for (const cc of changes) assert.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
  assert.throws(() => decodeConfChange(new TextEncoder().encode('{"op":"rename","id":"n1"}')), /unknown conf change/);
});
