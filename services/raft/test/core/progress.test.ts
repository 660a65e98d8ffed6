// Progress (progress.ts): the leader's flow control for one replica.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Progress } from "../../src/core/progress.ts";

test("probe: one append in flight until an answer", () => {
  const pr = new Progress(6, 4);
  assert.equal(pr.state, "probe");
  assert.ok(!pr.isPaused());
  pr.sentAppend(5, 0);
  assert.ok(pr.isPaused(), "even an empty probe waits for its answer");
  assert.equal(pr.next, 6, "probing does not move next");
  assert.ok(pr.maybeUpdate(5));
  assert.ok(!pr.isPaused());
  assert.equal(pr.match, 5);
  assert.equal(pr.next, 6);
});

test("probe -> replicate: next follows match, appends are pipelined up to the window", () => {
  const pr = new Progress(6, 3);
  pr.maybeUpdate(5);
  pr.becomeReplicate();
  assert.equal(pr.state, "replicate");
  assert.equal(pr.next, 6);
  pr.sentAppend(7, 2);
  pr.sentAppend(9, 2);
  assert.equal(pr.next, 10, "optimistic: next moves as soon as an append is sent");
  assert.ok(!pr.isPaused());
  pr.sentAppend(9, 0);
  assert.equal(pr.inflightCount(), 2, "an empty append does not use the window");
  pr.sentAppend(10, 1);
  assert.ok(pr.isPaused(), "three appends in flight fill a window of three");
  // An answer frees every append it covers.
  assert.ok(pr.maybeUpdate(9));
  assert.equal(pr.inflightCount(), 1);
  assert.ok(!pr.isPaused());
  pr.freeOldestInflight();
  assert.equal(pr.inflightCount(), 0);
});

test("maybeUpdate ignores stale answers but never lowers next", () => {
  const pr = new Progress(6, 4);
  pr.maybeUpdate(8);
  pr.becomeReplicate();
  assert.ok(!pr.maybeUpdate(7));
  assert.equal(pr.match, 8);
  assert.equal(pr.next, 9);
});

test("replicate -> probe on rejection: back to match + 1; stale rejections are ignored", () => {
  const pr = new Progress(6, 4);
  pr.maybeUpdate(5);
  pr.becomeReplicate();
  pr.sentAppend(8, 3);
  pr.sentAppend(9, 1);
  assert.ok(!pr.maybeDecrTo(5, 0), "a rejection at or below match is stale");
  assert.equal(pr.next, 10);
  assert.ok(pr.maybeDecrTo(8, 6));
  assert.equal(pr.next, 6);
  pr.becomeProbe();
  assert.equal(pr.state, "probe");
  assert.equal(pr.next, 6);
  assert.equal(pr.inflightCount(), 0);
});

test("probe rejections: only the answer to the current probe counts, and the hint moves next", () => {
  const pr = new Progress(11, 4);
  pr.sentAppend(10, 1);
  assert.ok(!pr.maybeDecrTo(9, 3), "not the probe in flight (prev was 10)");
  assert.ok(pr.isPaused());
  assert.ok(pr.maybeDecrTo(10, 4));
  assert.equal(pr.next, 5, "jumps to the hint + 1");
  assert.ok(!pr.isPaused(), "the next probe may go out");
  // The hint never pushes next above the rejected index...
  pr.sentAppend(4, 1);
  assert.ok(pr.maybeDecrTo(4, 9));
  assert.equal(pr.next, 4);
  // ...nor below match + 1.
  pr.maybeUpdate(2);
  pr.sentAppend(3, 1);
  assert.ok(pr.maybeDecrTo(3, 0));
  assert.equal(pr.next, 3);
});

test("snapshot: paused until it resolves; probing resumes after the snapshot", () => {
  const pr = new Progress(6, 4);
  pr.maybeUpdate(2);
  pr.becomeSnapshot(20);
  assert.equal(pr.state, "snapshot");
  assert.ok(pr.isPaused());
  assert.equal(pr.pendingSnapshot, 20);
  pr.becomeProbe();
  assert.equal(pr.next, 21, "the follower holds at least the snapshot");
  assert.equal(pr.pendingSnapshot, 0);
  // A failed snapshot (pendingSnapshot cleared by reportSnapshot) goes back to match + 1.
  pr.becomeSnapshot(20);
  pr.pendingSnapshot = 0;
  pr.becomeProbe();
  assert.equal(pr.next, 3);
});
