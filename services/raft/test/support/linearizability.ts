// Linearizability checker for recorded client histories.
//
// Wing & Gong / Lowe (WGL) backtracking search over a doubly linked list of
// call/return events, memoising (linearized-set, model state) pairs so that no
// configuration is explored twice, plus P-compositionality: a model may split
// the history into independent partitions (e.g. per key), each checked alone.
// Unknown-outcome operations are optional, with two dominance prunings (see
// search) that keep them from multiplying the search space.
// Porcupine served as a design reference; this is an independent implementation.

export interface Operation<Input, Output> {
  clientId: number;
  input: Input;
  /** undefined when the client never learned the outcome (then return = Infinity). */
  output: Output | undefined;
  call: number;
  /** Infinity: outcome unknown; the op may take effect any time after `call`, or never. */
  return: number;
}

export type StepResult<State> = { ok: boolean; next: State };

export interface Model<State, Input, Output> {
  init(): State;
  /** `output` is undefined for unknown-outcome ops; the model must then accept any effect. */
  step(state: State, input: Input, output: Output | undefined): StepResult<State>;
  equal(a: State, b: State): boolean;
  /** Cache key for a state; collisions are tolerated (equal() is consulted). */
  hash(state: State): string;
  partition?(history: readonly Operation<Input, Output>[]): Operation<Input, Output>[][];
  /** Human-readable name of a partition (e.g. its key); defaults to its index. */
  partitionName?(partition: readonly Operation<Input, Output>[]): string;
  describe?(input: Input, output: Output | undefined): string;
  describeState?(state: State): string;
}

/** Budgets are shared by all partitions; once spent, the rest report "unknown". */
export type CheckOptions = { timeoutMs?: number; maxSteps?: number };

export type Verdict = "ok" | "illegal" | "unknown";

/** An operation together with its index in the checked history. */
export interface IdentifiedOp<Input, Output> {
  id: number;
  op: Operation<Input, Output>;
}

export type PlacedOp<State, Input, Output> = IdentifiedOp<Input, Output> & { stateAfter: State };
export type StuckOp<Input, Output> = IdentifiedOp<Input, Output> & { reason: string };

export interface Explanation<State, Input, Output> {
  /** Longest partial linearization the search found, in linearization order. */
  longestPrefix: PlacedOp<State, Input, Output>[];
  stateAfterPrefix: State;
  /** Ops that were candidates to go next after the prefix, each with why it fails. */
  stuck: StuckOp<Input, Output>[];
  /** Every known-outcome op that is not in the prefix, by call time. */
  unplaced: IdentifiedOp<Input, Output>[];
}

export interface PartitionResult<State, Input, Output> {
  key: string;
  result: Verdict;
  steps: number;
  operations: IdentifiedOp<Input, Output>[];
  /** Witness when ok; unknown-outcome ops left out of it never took effect. */
  linearization?: PlacedOp<State, Input, Output>[];
  explanation?: Explanation<State, Input, Output>;
}

export interface CheckResult<State, Input, Output> {
  result: Verdict;
  partitionResults: PartitionResult<State, Input, Output>[];
  illegalKeys: string[];
  steps: number;
  elapsedMs: number;
}

type Budget = { deadline: number; stepsLeft: number };

export function checkOperations<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult<State, Input, Output> {
  const started = Date.now();
  history.forEach(validate);
  const budget: Budget = {
    deadline: options.timeoutMs === undefined ? Infinity : started + options.timeoutMs,
    stepsLeft: options.maxSteps ?? Infinity,
  };
  // Ids refer to positions in the caller's history so reports line up with it.
  const ids = new Map<Operation<Input, Output>, number>();
  history.forEach((op, i) => ids.set(op, i));
  const parts = model.partition ? model.partition(history) : [history.slice()];

  const partitionResults: PartitionResult<State, Input, Output>[] = [];
  let steps = 0;
  parts.forEach((ops, index) => {
    if (ops.length === 0) return;
    const key = model.partitionName?.(ops) ?? String(index);
    const operations = ops.map((op, i) => ({ id: ids.get(op) ?? i, op }));
    const found = search(model, ops, budget);
    steps += found.steps;
    budget.stepsLeft -= found.steps;
    const res: PartitionResult<State, Input, Output> = { key, result: found.verdict, steps: found.steps, operations };
    if (found.verdict === "ok") res.linearization = replay(model, operations, found.order);
    if (found.verdict === "illegal") res.explanation = explain(model, operations, found.order);
    partitionResults.push(res);
  });

  const illegalKeys = partitionResults.filter((p) => p.result === "illegal").map((p) => p.key);
  const unknown = partitionResults.some((p) => p.result === "unknown");
  const result: Verdict = illegalKeys.length ? "illegal" : unknown ? "unknown" : "ok";
  return { result, partitionResults, illegalKeys, steps, elapsedMs: Date.now() - started };
}

function validate<I, O>(op: Operation<I, O>, i: number): void {
  if (!Number.isFinite(op.call)) throw new TypeError(`operation ${i}: call must be a finite number`);
  if (Number.isNaN(op.return) || op.return < op.call) {
    throw new TypeError(`operation ${i}: return (${op.return}) must be >= call (${op.call}) or Infinity`);
  }
}

interface SearchOutcome {
  verdict: Verdict;
  steps: number;
  /** Indices into the partition: the witness if ok, else the longest prefix found. */
  order: number[];
}

// Node ids: 2*i is op i's call, 2*i+1 its return. Known-outcome ops live in a
// time-ordered call/return list, as in WGL. Unknown-outcome ops have no return
// (nothing forces them to happen), so their calls sit in a second list; one is
// a candidate whenever its call precedes the first pending return.
function search<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], budget: Budget): SearchOutcome {
  const n = ops.length;
  const MAIN = 2 * n;
  const OPTIONAL = 2 * n + 1;
  const NIL = -1;
  const next = new Int32Array(2 * n + 2).fill(NIL);
  const prev = new Int32Array(2 * n + 2).fill(NIL);
  const required = ops.map((op) => op.return !== Infinity);

  const time = (e: number): number => (e & 1 ? ops[e >> 1].return : ops[e >> 1].call);
  // On equal timestamps calls sort before returns: touching intervals count as
  // concurrent, which can only make the checker more lenient, never flag a
  // correct history.
  const byTime = (a: number, b: number): number => time(a) - time(b) || (a & 1) - (b & 1) || a - b;
  const link = (head: number, nodes: number[]): void => {
    let last = head;
    for (const e of nodes.sort(byTime)) {
      next[last] = e;
      prev[e] = last;
      last = e;
    }
  };
  const ids = ops.map((_, i) => i);
  link(MAIN, ids.filter((i) => required[i]).flatMap((i) => [2 * i, 2 * i + 1]));
  link(OPTIONAL, ids.filter((i) => !required[i]).map((i) => 2 * i));

  const unlink = (x: number): void => {
    next[prev[x]] = next[x];
    if (next[x] !== NIL) prev[next[x]] = prev[x];
  };
  const relink = (x: number): void => {
    next[prev[x]] = x;
    if (next[x] !== NIL) prev[next[x]] = x;
  };
  // Dancing links: relinking in exact reverse order of unlinking restores the list.
  const lift = (i: number): void => {
    unlink(2 * i);
    if (required[i]) unlink(2 * i + 1);
  };
  const unlift = (i: number): void => {
    if (required[i]) relink(2 * i + 1);
    relink(2 * i);
  };
  const firstReturnTime = (): number => {
    let e = next[MAIN];
    while (e !== NIL && (e & 1) === 0) e = next[e];
    return e === NIL ? Infinity : time(e);
  };

  // Linearized known-outcome ops form the cache key; linearized unknown ones
  // are kept apart because of dominance: (R, O, state) can do everything
  // (R, O', state) can when O is a subset of O' (the extra ops just never
  // happen), so a configuration is pruned if one with the same R and state and
  // a subset of its O was already entered.
  const words = (n + 31) >>> 5;
  const reqBits = new Uint32Array(words);
  const optBits = new Uint32Array(words);
  const flip = (i: number): void => {
    (required[i] ? reqBits : optBits)[i >>> 5] ^= 1 << (i & 31);
  };
  const reqKey = (): string => {
    let s = "";
    for (let w = 0; w < words; w++) s += reqBits[w].toString(36) + ",";
    return s;
  };
  const dominated = (seen: Uint32Array): boolean => {
    for (let w = 0; w < words; w++) if ((seen[w] & ~optBits[w]) !== 0) return false;
    return true;
  };
  // Buckets also hold states whose hashes collide, told apart with equal().
  const cache = new Map<string, { state: S; opt: Uint32Array }[]>();

  let requiredLeft = required.filter(Boolean).length;
  let state = model.init();
  const opStack: number[] = [];
  const stateStack: S[] = [];
  let best: number[] = [];
  let steps = 0;

  // An unknown-outcome op linearized last must matter to the op placed next:
  // if that op would do the same from the state before it, the configuration
  // is dominated by one the parent reaches directly (same candidates, since
  // the unknown op has no return). This stops unobserved lost writes from
  // being tried in every combination.
  const pointless = (i: number, after: S): boolean => {
    const top = opStack.length - 1;
    if (top < 0 || required[opStack[top]]) return false;
    const r0 = model.step(stateStack[top], ops[i].input, ops[i].output);
    return r0.ok && model.equal(r0.next, after);
  };

  // Known-outcome candidates are tried first, unknown ones second (up to
  // `bound`), so configurations with fewer unknown ops are entered first and
  // dominate the rest.
  let optionalPass = false;
  let bound = Infinity;
  let entry = next[MAIN];

  while (requiredLeft > 0) {
    if (++steps > budget.stepsLeft || ((steps & 1023) === 0 && Date.now() > budget.deadline)) {
      return { verdict: "unknown", steps, order: best };
    }
    const candidate = entry !== NIL && (optionalPass ? time(entry) <= bound : (entry & 1) === 0);
    if (candidate) {
      const i = entry >> 1;
      const r = model.step(state, ops[i].input, ops[i].output);
      if (r.ok && !pointless(i, r.next)) {
        flip(i);
        const key = reqKey() + "|" + model.hash(r.next);
        const bucket = cache.get(key);
        if (!bucket || !bucket.some((e) => dominated(e.opt) && model.equal(e.state, r.next))) {
          const entered = { state: r.next, opt: optBits.slice() };
          if (bucket) bucket.push(entered);
          else cache.set(key, [entered]);
          opStack.push(i);
          stateStack.push(state);
          state = r.next;
          lift(i);
          if (required[i]) requiredLeft--;
          if (opStack.length > best.length) best = opStack.slice();
          optionalPass = false;
          entry = next[MAIN];
          continue;
        }
        flip(i);
      }
      entry = next[entry];
    } else if (!optionalPass) {
      optionalPass = true;
      bound = entry === NIL ? Infinity : time(entry);
      entry = next[OPTIONAL];
    } else {
      // No candidate left: undo the last linearized op and try its successors.
      const i = opStack.pop();
      if (i === undefined) return { verdict: "illegal", steps, order: best };
      state = stateStack.pop() as S;
      flip(i);
      unlift(i);
      if (required[i]) requiredLeft++;
      optionalPass = !required[i];
      if (optionalPass) bound = firstReturnTime();
      entry = next[2 * i];
    }
  }
  return { verdict: "ok", steps, order: opStack };
}

function replay<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly IdentifiedOp<I, O>[],
  order: readonly number[],
): PlacedOp<S, I, O>[] {
  let state = model.init();
  return order.map((i) => {
    const { id, op } = operations[i];
    state = model.step(state, op.input, op.output).next;
    return { id, op, stateAfter: state };
  });
}

function explain<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly IdentifiedOp<I, O>[],
  order: readonly number[],
): Explanation<S, I, O> {
  const longestPrefix = replay(model, operations, order);
  const state = longestPrefix.length ? longestPrefix[longestPrefix.length - 1].stateAfter : model.init();
  const placed = new Set(order);
  const remaining = operations.filter((_, i) => !placed.has(i)).sort((a, b) => a.op.call - b.op.call);
  const unplaced = remaining.filter((x) => x.op.return !== Infinity);
  // The earliest-returning unplaced op is the deadline: something in the
  // frontier (ops called no later than that) had to go next, and none could.
  const deadline = Math.min(...unplaced.map((x) => x.op.return));
  const stuck = remaining
    .filter((x) => x.op.call <= deadline)
    .map((x): StuckOp<I, O> => {
      const r = model.step(state, x.op.input, x.op.output);
      const why = r.ok
        ? `possible in state ${showState(model, state)} (-> ${showState(model, r.next)}), but no linearization of the rest continues from there`
        : `impossible in state ${showState(model, state)}`;
      const due = x.op.return === deadline ? `must take effect by t=${deadline}; ` : "";
      return { ...x, reason: due + why };
    });
  return { longestPrefix, stateAfterPrefix: state, stuck, unplaced };
}

export function describeOp<S, I, O>(model: Model<S, I, O>, op: Operation<I, O>): string {
  if (model.describe) return model.describe(op.input, op.output);
  return `${JSON.stringify(op.input)} -> ${op.output === undefined ? "?" : JSON.stringify(op.output)}`;
}

function showState<S, I, O>(model: Model<S, I, O>, state: S): string {
  return model.describeState ? model.describeState(state) : JSON.stringify(state);
}

const fmtTime = (t: number): string => (t === Infinity ? "∞" : String(t));

/**
 * Plain-text timeline table of one partition: one row per operation (by call
 * time) with its position in the longest linearizable prefix, a bar for its
 * interval, and, when illegal, why each frontier op could not be placed.
 */
export function renderPartition<S, I, O>(
  model: Model<S, I, O>,
  part: PartitionResult<S, I, O>,
  width = 48,
): string {
  const order = part.linearization ?? part.explanation?.longestPrefix ?? [];
  const position = new Map(order.map((p, k) => [p.id, k + 1]));
  const stuck = new Map((part.explanation?.stuck ?? []).map((s) => [s.id, s]));
  const rows = part.operations.slice().sort((a, b) => a.op.call - b.op.call || a.id - b.id);

  const finite = rows.flatMap((r) => [r.op.call, r.op.return]).filter(Number.isFinite);
  const lo = Math.min(...finite);
  const span = Math.max(...finite) - lo || 1;
  const col = (t: number): number => Math.round(((t - lo) / span) * (width - 1));
  const bar = (op: Operation<I, O>): string => {
    const a = col(op.call);
    if (op.return === Infinity) return " ".repeat(a) + "[" + "-".repeat(Math.max(0, width - a - 1)) + ">";
    const b = col(op.return);
    return " ".repeat(a) + (a === b ? "|" : "[" + "=".repeat(Math.max(0, b - a - 1)) + "]");
  };

  const header = ["id", "client", "call", "return", "operation", "order", "timeline"];
  const table = rows.map((r) => {
    const pos = position.get(r.id);
    const mark = pos !== undefined ? String(pos) : stuck.has(r.id) ? "STUCK" : r.op.return === Infinity ? "never" : "-";
    return [`#${r.id}`, String(r.op.clientId), fmtTime(r.op.call), fmtTime(r.op.return), describeOp(model, r.op), mark, bar(r.op)];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...table.map((row) => row[c].length)));
  const line = (cells: string[]): string =>
    cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]))).join("  ").trimEnd();

  const out: string[] = [];
  const total = part.operations.length;
  if (part.result === "illegal" && part.explanation) {
    const ex = part.explanation;
    out.push(`partition ${part.key}: ILLEGAL — longest linearizable prefix has ${ex.longestPrefix.length} of ${total} ops`);
  } else {
    out.push(`partition ${part.key}: ${part.result.toUpperCase()} (${total} ops, ${part.steps} steps)`);
  }
  out.push(line(header), ...table.map(line));
  if (part.explanation) {
    const ex = part.explanation;
    out.push("", "longest linearizable prefix:");
    for (const p of ex.longestPrefix) out.push(`  #${p.id} ${describeOp(model, p.op)}  => ${showState(model, p.stateAfter)}`);
    if (ex.longestPrefix.length === 0) out.push("  (empty)");
    out.push(`state after prefix: ${showState(model, ex.stateAfterPrefix)}`, "could not be placed next:");
    for (const s of ex.stuck) {
      out.push(`  #${s.id} ${describeOp(model, s.op)} [${fmtTime(s.op.call)}, ${fmtTime(s.op.return)}]: ${s.reason}`);
    }
    out.push(`unplaced ops with known outcome: ${ex.unplaced.map((u) => `#${u.id}`).join(" ") || "(none)"}`);
  }
  return out.join("\n");
}

/** Summary plus a timeline for every partition that is not ok. */
export function renderCheckResult<S, I, O>(model: Model<S, I, O>, res: CheckResult<S, I, O>): string {
  const out = [
    `linearizability: ${res.result.toUpperCase()} (${res.partitionResults.length} partitions, ${res.steps} steps, ${res.elapsedMs} ms)`,
  ];
  if (res.illegalKeys.length) out.push(`illegal partitions: ${res.illegalKeys.join(", ")}`);
  for (const p of res.partitionResults) if (p.result !== "ok") out.push("", renderPartition(model, p));
  return out.join("\n");
}

export { kvModel } from "./kv-model.ts";
export type { KvInput, KvOutput, KvState } from "./kv-model.ts";
