// Sequential specification of the replicated key-value store, for the
// linearizability checker. Keys are independent, so the model partitions by
// key and each partition's state is just that key's value (null when absent).
import type { Model, Operation } from "./linearizability.ts";

export type KvInput =
  | { op: "put"; key: string; value: string }
  | { op: "get"; key: string }
  | { op: "cas"; key: string; expected: string | null; value: string };

export type KvOutput = { ok: boolean } | { value: string | null };

export type KvState = string | null;

type KvOp = Operation<KvInput, KvOutput>;

const okOf = (output: KvOutput): boolean | undefined => ("ok" in output ? output.ok : undefined);
const quote = (v: string | null): string => (v === null ? "null" : JSON.stringify(v));

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,

  step(state, input, output) {
    switch (input.op) {
      case "put":
        // Unknown outcome: if it is linearized at all, it took effect.
        return { ok: output === undefined || okOf(output) === true, next: input.value };
      case "get":
        return { ok: output === undefined || ("value" in output && output.value === state), next: state };
      case "cas": {
        // CAS is deterministic given the state, so an unknown-outcome CAS
        // needs no branching: it succeeds exactly when the value matches.
        const hit = state === input.expected;
        const ok = output === undefined || okOf(output) === hit;
        return { ok, next: hit ? input.value : state };
      }
    }
  },

  equal: (a, b) => a === b,
  // JSON keeps null and the string "null" apart.
  hash: (state) => JSON.stringify(state),

  partition(history) {
    const byKey = new Map<string, KvOp[]>();
    for (const op of history) {
      // A read whose result nobody saw constrains nothing: drop it.
      if (op.input.op === "get" && op.output === undefined) continue;
      const ops = byKey.get(op.input.key);
      if (ops) ops.push(op);
      else byKey.set(op.input.key, [op]);
    }
    return [...byKey.values()];
  },

  partitionName: (ops) => JSON.stringify(ops[0].input.key),

  describe(input, output) {
    const unknown = output === undefined;
    switch (input.op) {
      case "put":
        return `put(${quote(input.value)}) -> ${unknown ? "?" : okOf(output) ? "ok" : "FAILED"}`;
      case "get":
        return `get() -> ${unknown ? "?" : "value" in output ? quote(output.value) : JSON.stringify(output)}`;
      case "cas":
        return `cas(${quote(input.expected)} -> ${quote(input.value)}) -> ${unknown ? "?" : okOf(output) ? "ok" : "fail"}`;
    }
  },

  describeState: (state) => quote(state),
};
