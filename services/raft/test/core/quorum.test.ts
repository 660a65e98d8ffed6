// Majority arithmetic (quorum.ts): only voters count, standbys and spares never do.

import assert from "node:assert/strict";
import { test } from "node:test";
import { majority, quorumIndex, voteResult } from "../../src/core/quorum.ts";

test("majority is more than half of the voters", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(majority), [1, 2, 2, 3, 3, 4, 4]);
});

test("quorumIndex is the highest index a majority of voters has reached", () => {
  const at = (m: Record<string, number>) => (id: string) => m[id] ?? 0;
  assert.equal(quorumIndex(["a"], at({ a: 7 })), 7);
  assert.equal(quorumIndex(["a", "b"], at({ a: 7, b: 3 })), 3);
  assert.equal(quorumIndex(["a", "b", "c"], at({ a: 7, b: 3, c: 5 })), 5);
  assert.equal(quorumIndex(["a", "b", "c"], at({ a: 7 })), 0);
  // Four voters need three: the third highest.
  assert.equal(quorumIndex(["a", "b", "c", "d"], at({ a: 9, b: 8, c: 2, d: 1 })), 2);
  assert.equal(quorumIndex(["a", "b", "c", "d", "e"], at({ a: 9, b: 8, c: 7, d: 1, e: 0 })), 7);
  // The order of the voters does not matter.
  assert.equal(quorumIndex(["c", "a", "b"], at({ a: 7, b: 3, c: 5 })), 5);
});

test("quorumIndex of no voters is 0, and only voters are consulted", () => {
  assert.equal(quorumIndex([], () => 99), 0);
  const asked: string[] = [];
  quorumIndex(["a", "b", "c"], (id) => (asked.push(id), 1));
  assert.deepEqual(asked.sort(), ["a", "b", "c"]);
});

test("voteResult: won at a majority of grants, lost once a majority is impossible", () => {
  const votes = (m: Record<string, boolean>) => new Map(Object.entries(m));
  const v3 = ["n1", "n2", "n3"];
  assert.equal(voteResult(v3, votes({})), "pending");
  assert.equal(voteResult(v3, votes({ n1: true })), "pending");
  assert.equal(voteResult(v3, votes({ n1: true, n2: true })), "won");
  assert.equal(voteResult(v3, votes({ n1: true, n2: false })), "pending");
  assert.equal(voteResult(v3, votes({ n1: true, n2: false, n3: false })), "lost");
  const v4 = ["n1", "n2", "n3", "n4"];
  assert.equal(voteResult(v4, votes({ n1: true, n2: true })), "pending");
  assert.equal(voteResult(v4, votes({ n1: true, n2: true, n3: true })), "won");
  assert.equal(voteResult(v4, votes({ n1: true, n2: true, n3: false })), "pending");
  // Two refusals of four: three grants are no longer possible.
  assert.equal(voteResult(v4, votes({ n1: true, n3: false, n4: false })), "lost");
  assert.equal(voteResult(["n1"], votes({ n1: true })), "won");
});

test("voteResult ignores votes from standbys and strangers", () => {
  const votes = new Map([
    ["n1", true],
    ["n4", true],
    ["n5", true],
  ]);
  // n4 and n5 are not voters: one grant of three voters is not enough.
  assert.equal(voteResult(["n1", "n2", "n3"], votes), "pending");
  const refusals = new Map([
    ["n1", true],
    ["n4", false],
    ["n5", false],
  ]);
  assert.equal(voteResult(["n1", "n2", "n3"], refusals), "pending");
});
