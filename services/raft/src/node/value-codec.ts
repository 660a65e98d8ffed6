// SQL values between the state machine (Param) and the wire (proto Value).

import type { Value } from "../../../../proto/gen/database.ts";
import type { Param } from "../db/param.ts";
import { DatabaseError } from "./errors.ts";

export function paramToValue(p: Param): Value {
  if (p === null) return { kind: { $case: "null", value: true } };
  if (typeof p === "bigint") {
    return Number.isSafeInteger(Number(p))
      ? { kind: { $case: "integer", value: Number(p) } }
      : { kind: { $case: "bigInteger", value: p.toString() } };
  }
  if (typeof p === "number") {
    return Number.isInteger(p) && Number.isSafeInteger(p) && !Object.is(p, -0)
      ? { kind: { $case: "integer", value: p } }
      : { kind: { $case: "real", value: p } };
  }
  if (typeof p === "string") return { kind: { $case: "text", value: p } };
  return { kind: { $case: "blob", value: Buffer.from(p.buffer, p.byteOffset, p.byteLength) } };
}

export function valueToParam(v: Value | undefined): Param {
  const k = v?.kind;
  if (!k) return null;
  switch (k.$case) {
    case "null":
      return null;
    case "integer":
      return k.value;
    case "bigInteger": {
      if (!/^-?\d+$/.test(k.value)) throw DatabaseError.invalid(`big_integer "${k.value}" is not a decimal integer`);
      return BigInt(k.value);
    }
    case "real":
      return k.value;
    case "text":
      return k.value;
    case "blob":
      return k.value;
    case "boolean":
      return k.value ? 1 : 0;
  }
}
