// What applying a command produced. Results are stored per requestId, so a
// retried command gets back exactly what the first attempt got.
import { z } from "zod";
import { WireParamSchema, paramFromWire, paramToWire } from "./param.ts";

export interface StatementResult {
  changes: number;
  /** The connection's last inserted rowid after the statement (reset to 0 at the start of each command). */
  lastInsertRowid: number | bigint;
}

export type ApplyErrorCode = "precondition-failed" | "sql-error" | "bad-command" | "schema-version";

export type ApplyResult =
  | { ok: true; results: StatementResult[] }
  | { ok: false; error: { code: ApplyErrorCode; message: string } };

const StoredResultSchema = z.union([
  z.object({ ok: z.literal(true), results: z.array(z.object({ changes: z.number(), lastInsertRowid: WireParamSchema })) }),
  z.object({
    ok: z.literal(false),
    error: z.object({
      code: z.enum(["precondition-failed", "sql-error", "bad-command", "schema-version"]),
      message: z.string(),
    }),
  }),
]);

export function encodeResult(r: ApplyResult): string {
  if (!r.ok) return JSON.stringify(r);
  return JSON.stringify({
    ok: true,
    results: r.results.map((s) => ({ changes: s.changes, lastInsertRowid: paramToWire(s.lastInsertRowid) })),
  });
}

export function decodeResult(json: string): ApplyResult {
  const r = StoredResultSchema.parse(JSON.parse(json));
  if (!r.ok) return r;
  return {
    ok: true,
    results: r.results.map((s) => ({ changes: s.changes, lastInsertRowid: paramFromWire(s.lastInsertRowid) as number | bigint })),
  };
}
