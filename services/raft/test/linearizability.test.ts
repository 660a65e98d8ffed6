import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkOperations,
  kvModel,
  renderCheckResult,
  renderPartition,
  type CheckResult,
  type KvInput,
  type KvOutput,
  type KvState,
  type Model,
  type Operation,
} from "./support/linearizability.ts";

type KvOp = Operation<KvInput, KvOutput>;
type KvResult = CheckResult<KvState, KvInput, KvOutput>;

// `ret = Infinity` marks an op whose outcome the client never learned.
const put = (key: string, value: string, call: number, ret: number, clientId = 0): KvOp => ({
  clientId,
  input: { op: "put", key, value },
  output: ret === Infinity ? undefined : { ok: true },
  call,
  return: ret,
});
const get = (key: string, value: string | null, call: number, ret: number, clientId = 0): KvOp => ({
  clientId,
  input: { op: "get", key },
  output: ret === Infinity ? undefined : { value },
  call,
  return: ret,
});
const cas = (key: string, expected: string | null, value: string, ok: boolean, call: number, ret: number): KvOp => ({
  clientId: 0,
  input: { op: "cas", key, expected, value },
  output: ret === Infinity ? undefined : { ok },
  call,
  return: ret,
});

const check = (history: KvOp[]): KvResult => checkOperations(kvModel, history, { timeoutMs: 10_000 });

// The same store as one model over all keys, without partitioning, so the
// property tests can confirm P-compositionality changes no verdict.
type Store = Readonly<Record<string, string>>;
const storeHash = (s: Store): string => JSON.stringify(Object.entries(s).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const wholeStoreModel: Model<Store, KvInput, KvOutput> = {
  init: () => ({}),
  step(state, input, output) {
    const before = state[input.key] ?? null;
    const r = kvModel.step(before, input, output);
    return { ok: r.ok, next: r.next === before || r.next === null ? state : { ...state, [input.key]: r.next } };
  },
  equal: (a, b) => storeHash(a) === storeHash(b),
  hash: storeHash,
};
const checkWhole = (history: KvOp[]): string => checkOperations(wholeStoreModel, history, { timeoutMs: 10_000 }).result;

test("sequential history is linearizable", () => {
  const res = check([get("x", null, 0, 1), put("x", "1", 2, 3), get("x", "1", 4, 5), put("x", "2", 6, 7), get("x", "2", 8, 9)]);
  assert.equal(res.result, "ok");
  assert.deepEqual(res.partitionResults[0].linearization?.map((p) => p.id), [0, 1, 2, 3, 4]);
});

test("stale read after a completed put is illegal and explained", () => {
  const res = check([put("x", "1", 0, 10), get("x", null, 20, 30, 1)]);
  assert.equal(res.result, "illegal");
  assert.deepEqual(res.illegalKeys, ['"x"']);
  const ex = res.partitionResults[0].explanation!;
  assert.deepEqual(ex.longestPrefix.map((p) => p.id), [0]);
  assert.equal(ex.stateAfterPrefix, "1");
  assert.deepEqual(ex.stuck.map((s) => s.id), [1]);
  assert.match(ex.stuck[0].reason, /must take effect by t=30; impossible in state "1"/);
  assert.deepEqual(ex.unplaced.map((u) => u.id), [1]);
});

test("concurrent put and get may be ordered either way", () => {
  assert.equal(check([put("x", "1", 0, 10), get("x", null, 5, 15, 1)]).result, "ok");
  assert.equal(check([put("x", "1", 0, 10), get("x", "1", 5, 15, 1)]).result, "ok");
  // Touching intervals count as concurrent.
  assert.equal(check([put("x", "1", 0, 10), get("x", null, 10, 15, 1)]).result, "ok");
  assert.equal(check([put("x", "1", 0, 10), get("x", null, 11, 15, 1)]).result, "illegal");
});

test("two readers observing writes in contradicting orders is illegal", () => {
  const writes = [put("x", "1", 0, 100, 0), put("x", "2", 0, 100, 1)];
  const a = [get("x", "1", 10, 20, 2), get("x", "2", 30, 40, 2)];
  const b = [get("x", "2", 10, 20, 3), get("x", "1", 30, 40, 3)];
  assert.equal(check([...writes, ...a]).result, "ok");
  assert.equal(check([...writes, ...b]).result, "ok");
  assert.equal(check([...writes, ...a, ...b]).result, "illegal");
});

test("cas succeeds exactly when the expected value matches", () => {
  const base = [put("x", "a", 0, 1)];
  assert.equal(check([cas("x", null, "a", true, 0, 1), get("x", "a", 2, 3)]).result, "ok");
  assert.equal(check([...base, cas("x", "a", "b", true, 2, 3), cas("x", "a", "c", false, 4, 5), get("x", "b", 6, 7)]).result, "ok");
  assert.equal(check([...base, cas("x", "a", "b", true, 2, 3), cas("x", "a", "c", true, 4, 5)]).result, "illegal");
  assert.equal(check([...base, cas("x", "a", "b", false, 2, 3)]).result, "illegal");
  assert.equal(check([...base, cas("x", "z", "b", false, 2, 3), get("x", "a", 4, 5)]).result, "ok");
  // A failed cas must not change the value.
  assert.equal(check([...base, cas("x", "z", "b", false, 2, 3), get("x", "b", 4, 5)]).result, "illegal");
  // Two concurrent cas from the same expected value: only one may win.
  const race = [...base, cas("x", "a", "b", true, 2, 10), cas("x", "a", "c", true, 2, 10)];
  assert.equal(check(race).result, "illegal");
  race[2] = cas("x", "a", "c", false, 2, 10);
  assert.equal(check([...race, get("x", "b", 11, 12)]).result, "ok");
});

test("unknown-outcome put that a later read saw must have happened", () => {
  const res = check([put("x", "1", 0, Infinity), get("x", "1", 10, 20, 1)]);
  assert.equal(res.result, "ok");
  assert.deepEqual(res.partitionResults[0].linearization?.map((p) => p.id), [0, 1]);
  // It may also take effect long after its call.
  assert.equal(check([put("x", "1", 0, Infinity), get("x", null, 10, 20, 1), get("x", "1", 30, 40, 1)]).result, "ok");
});

test("unknown-outcome put that nobody saw is ok", () => {
  const res = check([put("x", "1", 0, Infinity), get("x", null, 10, 20, 1), get("x", null, 30, 40, 1)]);
  assert.equal(res.result, "ok");
  assert.deepEqual(res.partitionResults[0].linearization?.map((p) => p.id), [1, 2]);
  assert.equal(check([put("x", "0", 0, 1), put("x", "1", 2, Infinity), get("x", "0", 10, 20)]).result, "ok");
});

test("unknown-outcome put seen and then unseen is illegal", () => {
  const res = check([put("x", "1", 0, Infinity), get("x", "1", 10, 20, 1), get("x", null, 30, 40, 1)]);
  assert.equal(res.result, "illegal");
  assert.deepEqual(res.partitionResults[0].explanation?.stuck.map((s) => s.id), [2]);
});

test("unknown-outcome cas and get", () => {
  const base = [put("x", "a", 0, 1), cas("x", "a", "b", false, 2, Infinity)];
  assert.equal(check([...base, get("x", "b", 10, 11)]).result, "ok");
  assert.equal(check([...base, get("x", "a", 10, 11)]).result, "ok");
  assert.equal(check([...base, get("x", "b", 10, 11), get("x", "a", 12, 13)]).result, "illegal");
  // An unknown read constrains nothing and is dropped from its partition.
  const res = check([put("x", "a", 0, 1), get("x", null, 2, Infinity)]);
  assert.equal(res.result, "ok");
  assert.equal(res.partitionResults[0].operations.length, 1);
});

test("multi-key history: only the bad key is reported", () => {
  const history = [
    put("x", "1", 0, 10),
    put("y", "1", 0, 10, 1),
    get("x", "1", 5, 15, 2),
    get("y", null, 20, 30, 2),
    put("z", "9", 0, Infinity, 3),
  ];
  const res = check(history);
  assert.equal(res.result, "illegal");
  assert.deepEqual(res.illegalKeys, ['"y"']);
  assert.deepEqual(
    res.partitionResults.map((p) => [p.key, p.result]),
    [['"x"', "ok"], ['"y"', "illegal"], ['"z"', "ok"]],
  );
  // Ids refer to positions in the full history.
  assert.deepEqual(res.partitionResults[1].explanation?.stuck.map((s) => s.id), [3]);
  const text = renderCheckResult(kvModel, res);
  assert.match(text, /illegal partitions: "y"/);
  assert.match(text, /#3 +2 +20 +30 +get\(\) -> null +STUCK/);
  assert.match(text, /#3 get\(\) -> null \[20, 30\]: must take effect by t=30; impossible in state "1"/);
  assert.doesNotMatch(text, /partition "x"/);
});

test("renderPartition draws unknown outcomes and the prefix", () => {
  const res = check([put("x", "1", 0, Infinity), get("x", "1", 10, 20, 1), get("x", null, 30, 40, 1)]);
  const text = renderPartition(kvModel, res.partitionResults[0]);
  assert.match(text, /ILLEGAL — longest linearizable prefix has 2 of 3 ops/);
  assert.match(text, /#0 +0 +0 +∞ +put\("1"\) -> \? +1 +\[-+>/);
  assert.match(text, /state after prefix: "1"/);
});

test("budget exhaustion yields unknown, and bad input is rejected", () => {
  const history = [put("x", "1", 0, 10), get("x", "1", 5, 15), put("y", "1", 0, 10)];
  const res = checkOperations(kvModel, history, { maxSteps: 2 });
  assert.equal(res.result, "unknown");
  assert.ok(res.partitionResults.some((p) => p.result === "unknown"));
  assert.equal(checkOperations(kvModel, [], {}).result, "ok");
  assert.throws(() => check([put("x", "1", 10, 5)]), /return \(5\) must be >= call/);
  assert.throws(() => check([put("x", "1", NaN, 5)]), /call must be a finite number/);
});

// ---- Property tests: histories derived from a real sequential execution ----

interface Step {
  key: number;
  kind: "put" | "get" | "cas";
  casHit: boolean;
  before: number;
  after: number;
  fate: "known" | "applied" | "lost";
  client: number;
}

const SPACING = 100;

// Runs the steps against a Map, one linearization point every SPACING ticks,
// then widens each op to an interval around its point. Unknown-outcome ops
// either took effect at their point ("applied") or never ("lost").
function buildHistory(steps: readonly Step[], keys: number): KvOp[] {
  const store = new Map<string, string>();
  return steps.map((s, k) => {
    const key = `k${s.key % keys}`;
    const t = SPACING * (k + 1);
    const current = store.get(key) ?? null;
    const unknown = s.fate !== "known";
    const ret = unknown ? Infinity : t + s.after;
    const op = { clientId: s.client, call: t - s.before, return: ret };
    if (s.kind === "get") {
      return { ...op, input: { op: "get", key }, output: unknown ? undefined : { value: current } };
    }
    const value = `v${k}`;
    if (s.kind === "put") {
      if (s.fate !== "lost") store.set(key, value);
      return { ...op, input: { op: "put", key, value }, output: unknown ? undefined : { ok: true } };
    }
    const expected = s.casHit ? current : current === null ? `v${k - 1}` : null;
    if (expected === current && s.fate !== "lost") store.set(key, value);
    return { ...op, input: { op: "cas", key, expected, value }, output: unknown ? undefined : { ok: expected === current } };
  });
}

const stepArb = (maxKey: number, maxWidth: number): fc.Arbitrary<Step> =>
  fc.record({
    key: fc.nat(maxKey),
    kind: fc.constantFrom("put" as const, "get" as const, "cas" as const),
    casHit: fc.boolean(),
    before: fc.nat(maxWidth),
    after: fc.nat(maxWidth),
    // ~10% unknown outcomes.
    fate: fc.nat(19).map((n) => (n === 0 ? "applied" : n === 1 ? "lost" : "known") as Step["fate"]),
    client: fc.nat(7),
  });

const historyArb = fc
  .record({ keys: fc.integer({ min: 1, max: 3 }), steps: fc.array(stepArb(2, 4 * SPACING), { minLength: 1, maxLength: 50 }) })
  .map(({ keys, steps }) => ({ keys, history: buildHistory(steps, keys) }));

// Independent validation of a witness: it replays in the model and respects real time.
function assertValidWitness(res: KvResult): void {
  for (const part of res.partitionResults) {
    const lin = part.linearization!;
    let state: KvState = null;
    for (const p of lin) {
      const r = kvModel.step(state, p.op.input, p.op.output);
      assert.ok(r.ok, `witness step #${p.id} rejected`);
      state = r.next;
    }
    for (let a = 0; a < lin.length; a++) {
      for (let b = a + 1; b < lin.length; b++) assert.ok(lin[b].op.return >= lin[a].op.call, "witness violates real time");
    }
    const placed = new Set(lin.map((p) => p.id));
    for (const { id, op } of part.operations) if (op.return !== Infinity) assert.ok(placed.has(id), `#${id} missing`);
  }
}

test("property: histories of a real sequential KV are linearizable", () => {
  fc.assert(
    fc.property(historyArb, ({ history }) => {
      const res = check(history);
      assert.equal(res.result, "ok", renderCheckResult(kvModel, res));
      assertValidWitness(res);
      // P-compositionality must agree with checking the history as a whole.
      assert.equal(checkWhole(history), "ok");
    }),
    { seed: 42, numRuns: 200 },
  );
});

test("property: a read of a never-written value is illegal, on its key only", () => {
  fc.assert(
    fc.property(historyArb, fc.nat(), ({ history }, pick) => {
      const reads = history.flatMap((op, i) => (op.input.op === "get" && op.output !== undefined ? [i] : []));
      fc.pre(reads.length > 0);
      const victim = reads[pick % reads.length];
      const bad = history.slice();
      bad[victim] = { ...bad[victim], output: { value: "never-written" } };
      const res = check(bad);
      assert.equal(res.result, "illegal");
      assert.deepEqual(res.illegalKeys, [JSON.stringify(bad[victim].input.key)]);
      const part = res.partitionResults.find((p) => p.result === "illegal")!;
      assert.ok(part.explanation!.unplaced.some((u) => u.id === victim));
      assert.equal(checkWhole(bad), "illegal");
    }),
    { seed: 42, numRuns: 200 },
  );
});

// ---- Differential test against brute force on arbitrary small histories ----

// Tries every ordering of every admissible subset: all known-outcome ops,
// any unknown ones, real-time order respected. No pruning, no memoisation.
function bruteForce(history: readonly KvOp[]): boolean {
  const placed = new Array<boolean>(history.length).fill(false);
  const go = (state: KvState, left: number): boolean => {
    if (left === 0) return true;
    return history.some((o, i) => {
      if (placed[i]) return false;
      const mustWait = history.some((r, j) => !placed[j] && r.return !== Infinity && r.return < o.call);
      const step = kvModel.step(state, o.input, o.output);
      if (mustWait || !step.ok) return false;
      placed[i] = true;
      const found = go(step.next, left - (o.return === Infinity ? 0 : 1));
      placed[i] = false;
      return found;
    });
  };
  return go(null, history.filter((o) => o.return !== Infinity).length);
}

const valueArb = fc.constantFrom(null, "a", "b");
const arbitraryOpArb: fc.Arbitrary<KvOp> = fc
  .record({
    kind: fc.constantFrom("put", "get", "cas"),
    value: fc.constantFrom("a", "b"),
    seen: valueArb,
    ok: fc.boolean(),
    call: fc.nat(20),
    length: fc.nat(10),
    unknown: fc.nat(3).map((n) => n === 0),
  })
  .map(({ kind, value, seen, ok, call, length, unknown }) => {
    const ret = unknown ? Infinity : call + length;
    if (kind === "put") return put("x", value, call, ret);
    if (kind === "get") return get("x", seen, call, ret);
    return cas("x", seen, value, ok, call, ret);
  });

test("property: verdicts agree with brute force on arbitrary small histories", () => {
  const verdicts = { ok: 0, illegal: 0 };
  fc.assert(
    fc.property(fc.array(arbitraryOpArb, { minLength: 1, maxLength: 7 }), (history) => {
      const expected = bruteForce(history) ? "ok" : "illegal";
      verdicts[expected]++;
      assert.equal(check(history).result, expected);
    }),
    { seed: 42, numRuns: 500 },
  );
  // Guard against a generator that only ever produces one verdict.
  assert.ok(verdicts.ok > 50 && verdicts.illegal > 50, JSON.stringify(verdicts));
});

// ---- Performance: ~200 ops per key at concurrency ~8 ----

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function maxConcurrency(ops: readonly KvOp[]): number {
  const ev = ops.flatMap((o) => [[o.call, 1], [o.return, -1]] as const).sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) max = Math.max(max, (cur += d));
  return max;
}

test("performance: 3 keys x 200 ops at concurrency ~8, ok and illegal", () => {
  const rnd = mulberry32(7);
  const keys = 3;
  // Per key an op lands every ~3*SPACING ticks, so widths of up to 12*SPACING
  // on each side overlap roughly 8 same-key operations.
  const steps: Step[] = Array.from({ length: 200 * keys }, () => {
    const f = rnd();
    return {
      key: Math.floor(rnd() * keys),
      kind: (["put", "get", "cas"] as const)[Math.floor(rnd() * 3)],
      casHit: rnd() < 0.5,
      before: Math.floor(rnd() * 12 * SPACING),
      after: Math.floor(rnd() * 12 * SPACING),
      fate: f < 0.03 ? "applied" : f < 0.06 ? "lost" : "known",
      client: Math.floor(rnd() * 8),
    };
  });
  const history = buildHistory(steps, keys);
  const k0 = history.filter((o) => o.input.key === "k0" && o.return !== Infinity);
  assert.ok(maxConcurrency(k0) >= 8, `concurrency ${maxConcurrency(k0)}`);

  const ok = check(history);
  assert.equal(ok.result, "ok");
  assert.ok(ok.elapsedMs < 1000, `ok took ${ok.elapsedMs} ms`);

  // Corrupt a read late in the history so the search must explore a lot first.
  const reads = history.flatMap((op, i) => (op.input.op === "get" && op.output !== undefined ? [i] : []));
  const victim = reads[reads.length - 5];
  const bad = history.slice();
  bad[victim] = { ...bad[victim], output: { value: "never-written" } };
  const res = check(bad);
  assert.equal(res.result, "illegal");
  assert.deepEqual(res.illegalKeys, [JSON.stringify(bad[victim].input.key)]);
  assert.ok(res.elapsedMs < 1000, `illegal took ${res.elapsedMs} ms`);
});
