// RaftLog (raft-log.ts): the in-memory log between the last snapshot and the end.

import assert from "node:assert/strict";
import { test } from "node:test";
import { RaftLog } from "../../src/core/raft-log.ts";
import type { Entry } from "../../src/core/types.ts";

function ent(index: number, term: number, bytes = 0): Entry {
  return { index, term, type: "normal", data: new Uint8Array(bytes) };
}

/** Entries from `first` on, one per term in `terms`. */
function ents(first: number, terms: number[]): Entry[] {
  return terms.map((t, i) => ent(first + i, t));
}

function terms(log: RaftLog): number[] {
  const out: number[] = [];
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(log.term(i)!);
  return out;
}

function logOf(termsFrom1: number[], committed = 0): RaftLog {
  return new RaftLog({ index: 0, term: 0 }, ents(1, termsFrom1), committed);
}

test("a new log starts after its snapshot, durable to its end, committed at most to its end", () => {
  const log = new RaftLog({ index: 3, term: 2 }, ents(2, [2, 2, 2, 3]), 99);
  assert.equal(log.firstIndex(), 4);
  assert.equal(log.lastIndex(), 5);
  assert.equal(log.lastTerm(), 3);
  assert.equal(log.stable, 5);
  assert.equal(log.committed, 5);
  assert.equal(log.applied, 3);
  assert.throws(() => new RaftLog({ index: 0, term: 0 }, [ent(1, 1), ent(3, 1)], 0), /log gap/);
  // Committed never goes below the snapshot.
  assert.equal(new RaftLog({ index: 3, term: 2 }, [], 0).committed, 3);
});

test("term and matchTerm: known at the snapshot index and inside the log only", () => {
  const log = new RaftLog({ index: 3, term: 2 }, ents(4, [2, 3]), 0);
  assert.equal(log.term(2), undefined);
  assert.equal(log.term(3), 2);
  assert.equal(log.term(4), 2);
  assert.equal(log.term(5), 3);
  assert.equal(log.term(6), undefined);
  assert.ok(log.matchTerm(3, 2));
  assert.ok(log.matchTerm(5, 3));
  assert.ok(!log.matchTerm(5, 2));
  assert.ok(!log.matchTerm(6, 3));
  assert.equal(log.entry(3), undefined);
  assert.equal(log.entry(4)?.term, 2);
});

test("appendFromLeader skips entries it already has and keeps the suffix after them", () => {
  const log = logOf([1, 1, 2, 2, 2], 2);
  assert.equal(log.appendFromLeader(ents(3, [2, 2])), 4);
  assert.deepEqual(terms(log), [1, 1, 2, 2, 2]);
  assert.equal(log.stable, 5, "nothing was rewritten, so nothing must be written again");
  assert.equal(log.appendFromLeader([]), 0);
});

test("appendFromLeader truncates at the first conflict and replaces the suffix", () => {
  const log = logOf([1, 1, 2, 2, 2, 2], 2);
  assert.equal(log.appendFromLeader(ents(3, [2, 3, 3])), 5);
  assert.deepEqual(terms(log), [1, 1, 2, 3, 3], "the old entry 6 is gone although the leader sent nothing there");
  assert.equal(log.stable, 3, "entries from the conflict on must be persisted again");
  assert.deepEqual(log.unstableEntries().map((e) => e.index), [4, 5]);
  // Extending past the end.
  assert.equal(log.appendFromLeader(ents(5, [3, 3, 4])), 7);
  assert.deepEqual(terms(log), [1, 1, 2, 3, 3, 3, 4]);
});

test("appendFromLeader refuses to overwrite a committed entry", () => {
  const log = logOf([1, 1, 2, 2], 3);
  assert.throws(() => log.appendFromLeader(ents(3, [3])), /conflict at committed index 3/);
  assert.deepEqual(terms(log), [1, 1, 2, 2], "the log is untouched");
  // Just above the commit index is fine.
  log.appendFromLeader(ents(4, [3]));
  assert.deepEqual(terms(log), [1, 1, 2, 3]);
});

test("appendFromLeader ignores entries already covered by the snapshot", () => {
  const log = new RaftLog({ index: 5, term: 2 }, ents(6, [2]), 5);
  // 4 and 5 are in the snapshot, 6/2 matches, 7/3 is new.
  assert.equal(log.appendFromLeader(ents(4, [2, 2, 2, 3])), 7);
  assert.deepEqual(terms(log), [2, 3]);
  assert.equal(log.firstIndex(), 6);
});

test("truncateAndAppend refuses gaps and writes inside the snapshot", () => {
  const log = new RaftLog({ index: 2, term: 1 }, ents(3, [1, 1]), 0);
  assert.throws(() => log.truncateAndAppend(ents(6, [2])), /leaves a gap after 4/);
  assert.throws(() => log.truncateAndAppend(ents(2, [2])), /inside the snapshot/);
  log.truncateAndAppend(ents(5, [2]));
  assert.equal(log.lastIndex(), 5);
});

test("commitTo only moves forward and never past the end", () => {
  const log = logOf([1, 1, 1], 1);
  assert.ok(log.commitTo(2));
  assert.ok(!log.commitTo(2));
  assert.ok(!log.commitTo(1));
  assert.equal(log.committed, 2);
  assert.throws(() => log.commitTo(4), /beyond last index 3/);
});

test("findConflictByTerm: the last index at or below `index` whose term is not newer than `term`", () => {
  //                      index: 1  2  3  4  5  6  7  8  9
  const log = logOf([1, 1, 3, 3, 3, 5, 5, 6, 6]);
  assert.equal(log.findConflictByTerm(9, 6), 9);
  assert.equal(log.findConflictByTerm(9, 5), 7, "skips all of term 6");
  assert.equal(log.findConflictByTerm(9, 4), 5, "term 4 is absent: the last entry of an older term");
  assert.equal(log.findConflictByTerm(9, 2), 2);
  assert.equal(log.findConflictByTerm(9, 0), 0);
  assert.equal(log.findConflictByTerm(4, 5), 4, "never above `index`");
  assert.equal(log.findConflictByTerm(50, 6), 9, "clamped to the last index");
});

test("findConflictByTerm stops at the snapshot: what is compacted is assumed to match", () => {
  const log = new RaftLog({ index: 4, term: 3 }, ents(5, [5, 5, 6]), 0);
  assert.equal(log.findConflictByTerm(7, 5), 6);
  assert.equal(log.findConflictByTerm(7, 1), 4);
  assert.equal(log.findConflictByTerm(2, 1), 2);
});

test("isUpToDate compares last terms first, then last indexes (§5.4.1)", () => {
  const log = logOf([1, 2, 2]);
  assert.ok(log.isUpToDate(1, 3), "a newer last term wins even with a shorter log");
  assert.ok(log.isUpToDate(3, 2));
  assert.ok(log.isUpToDate(4, 2));
  assert.ok(!log.isUpToDate(2, 2));
  assert.ok(!log.isUpToDate(9, 1), "an older last term loses even with a longer log");
});

test("slice honours count and byte limits but always returns one entry", () => {
  const log = new RaftLog({ index: 0, term: 0 }, [ent(1, 1, 100), ent(2, 1, 100), ent(3, 1, 100), ent(4, 1, 5000)], 0);
  assert.deepEqual(log.slice(1, 4).map((e) => e.index), [1, 2, 3, 4]);
  assert.deepEqual(log.slice(1, 99).map((e) => e.index), [1, 2, 3, 4], "hi is clamped to the last index");
  assert.deepEqual(log.slice(2, 4, 2).map((e) => e.index), [2, 3]);
  // Each entry counts its data plus 24 bytes of overhead.
  assert.deepEqual(log.slice(1, 4, Infinity, 248).map((e) => e.index), [1, 2]);
  assert.deepEqual(log.slice(1, 4, Infinity, 247).map((e) => e.index), [1]);
  assert.deepEqual(log.slice(4, 4, Infinity, 10).map((e) => e.index), [4], "an oversized entry still goes alone");
  assert.deepEqual(log.slice(1, 4, Infinity, 1).map((e) => e.index), [1]);
  assert.deepEqual(log.slice(5, 9), []);
  log.applied = 2;
  log.compact(2, 1);
  assert.throws(() => log.slice(2, 4), /compacted up to 2/);
});

test("unstableEntries and nextCommittedEntries follow stable, committed and applied", () => {
  const log = logOf([1, 1, 1, 2, 2], 4);
  assert.deepEqual(log.unstableEntries(), []);
  log.truncateAndAppend(ents(6, [2, 2]));
  assert.deepEqual(log.unstableEntries().map((e) => e.index), [6, 7]);
  assert.deepEqual(log.nextCommittedEntries(10).map((e) => e.index), [1, 2, 3, 4]);
  assert.deepEqual(log.nextCommittedEntries(3).map((e) => e.index), [1, 2, 3]);
  log.applied = 4;
  assert.deepEqual(log.nextCommittedEntries(10), []);
});

test("compact drops entries up to an applied index and remembers the boundary term", () => {
  const log = logOf([1, 1, 2, 2, 3], 5);
  log.applied = 4;
  assert.throws(() => log.compact(5, 3), /beyond applied 4/);
  log.compact(3, 2);
  assert.equal(log.firstIndex(), 4);
  assert.equal(log.term(3), 2);
  assert.equal(log.term(2), undefined);
  assert.deepEqual(terms(log), [2, 3]);
  log.compact(2, 1);
  assert.equal(log.firstIndex(), 4, "compacting below the snapshot is a no-op");
});

test("restore replaces the whole log by a snapshot", () => {
  const log = logOf([1, 1, 2], 2);
  log.restore({ index: 10, term: 4 });
  assert.equal(log.firstIndex(), 11);
  assert.equal(log.lastIndex(), 10);
  assert.equal(log.lastTerm(), 4);
  assert.equal(log.term(10), 4);
  assert.equal(log.term(3), undefined);
  assert.deepEqual([log.stable, log.committed, log.applied], [10, 10, 10]);
  assert.deepEqual(log.unstableEntries(), []);
  log.appendFromLeader(ents(11, [4]));
  assert.deepEqual(log.unstableEntries().map((e) => e.index), [11]);
});
