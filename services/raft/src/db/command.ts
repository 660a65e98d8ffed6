// The commands the state machine applies, as they arrive from callers (zod
// schemas), as they travel in the Raft log (a version byte + JSON with tagged
// params), and the checks that keep them deterministic.
import { z } from "zod";
import {
  type Param,
  type Params,
  ParamSchema,
  ParamsSchema,
  WireParamSchema,
  WireParamsSchema,
  paramFromWire,
  paramToWire,
  paramsFromWire,
  paramsToWire,
} from "./param.ts";
import { hasSecondStatement, internalNames, leadingKeyword, nondeterminism, tokenize } from "./sql-scan.ts";

export interface Statement {
  sql: string;
  params: Params;
  /** Abort the whole command unless the statement changes exactly this many rows. */
  expectChanges?: number;
}

/**
 * A read-only SELECT checked before a batch's statements, in the same
 * transaction. With neither expectation set it requires at least one row.
 */
export interface Precondition {
  sql: string;
  params: Params;
  /** The exact number of rows. */
  expectRows?: number;
  /** The first column of the first row (there must be a row). */
  expectValue?: Param;
  /** Prefixed to the failure message, for the caller's benefit. */
  message?: string;
}

export interface Batch {
  kind: "batch";
  /** Unique per logical write: a retry with the same id is applied once. */
  requestId: string;
  statements: Statement[];
  preconditions: Precondition[];
}

/** Moves the schema from version-1 to version; refused at any other version. */
export interface Migrate {
  kind: "migrate";
  requestId: string;
  version: number;
  statements: Statement[];
}

export type Command = Batch | Migrate;

export const MAX_STATEMENTS = 1000;
export const MAX_PRECONDITIONS = 1000;
export const MAX_COMMAND_BYTES = 1 << 20;
export const MAX_REQUEST_ID_LENGTH = 256;

const count = z.number().int().nonnegative();
const RequestIdSchema = z.string().min(1).max(MAX_REQUEST_ID_LENGTH);

export const StatementSchema: z.ZodType<Statement> = z.object({
  sql: z.string().min(1),
  params: ParamsSchema,
  expectChanges: count.optional(),
});

export const PreconditionSchema: z.ZodType<Precondition> = z.object({
  sql: z.string().min(1),
  params: ParamsSchema,
  expectRows: count.optional(),
  expectValue: ParamSchema.optional(),
  message: z.string().optional(),
});

export const BatchSchema: z.ZodType<Batch> = z.object({
  kind: z.literal("batch"),
  requestId: RequestIdSchema,
  statements: z.array(StatementSchema),
  preconditions: z.array(PreconditionSchema),
});

export const MigrateSchema: z.ZodType<Migrate> = z.object({
  kind: z.literal("migrate"),
  requestId: RequestIdSchema,
  version: z.number().int().positive(),
  statements: z.array(StatementSchema),
});

export const CommandSchema: z.ZodType<Command> = z.union([BatchSchema, MigrateSchema]);

// ---- wire format: short keys; params tagged (see param.ts) ----

const FORMAT_VERSION = 1;

const WireStatementSchema = z.object({ q: z.string(), p: WireParamsSchema, c: count.optional() });
const WirePreconditionSchema = z.object({
  q: z.string(),
  p: WireParamsSchema,
  r: count.optional(),
  v: WireParamSchema.optional(),
  m: z.string().optional(),
});
const WireCommandSchema = z.union([
  z.object({ t: z.literal("b"), id: RequestIdSchema, s: z.array(WireStatementSchema), pc: z.array(WirePreconditionSchema) }),
  z.object({ t: z.literal("m"), id: RequestIdSchema, v: z.number(), s: z.array(WireStatementSchema) }),
]);
type WireStatement = z.infer<typeof WireStatementSchema>;
type WireCommand = z.infer<typeof WireCommandSchema>;

const statementToWire = (s: Statement): WireStatement => ({
  q: s.sql,
  p: paramsToWire(s.params),
  ...(s.expectChanges !== undefined && { c: s.expectChanges }),
});
const statementFromWire = (w: WireStatement): Statement => ({
  sql: w.q,
  params: paramsFromWire(w.p),
  ...(w.c !== undefined && { expectChanges: w.c }),
});

export function encodeCommand(cmd: Command): Uint8Array {
  const wire: WireCommand =
    cmd.kind === "batch"
      ? {
          t: "b",
          id: cmd.requestId,
          s: cmd.statements.map(statementToWire),
          pc: cmd.preconditions.map((p) => ({
            q: p.sql,
            p: paramsToWire(p.params),
            ...(p.expectRows !== undefined && { r: p.expectRows }),
            ...(p.expectValue !== undefined && { v: paramToWire(p.expectValue) }),
            ...(p.message !== undefined && { m: p.message }),
          })),
        }
      : { t: "m", id: cmd.requestId, v: cmd.version, s: cmd.statements.map(statementToWire) };
  // Encoded straight into the entry's own buffer: no intermediate copy of the JSON.
  const json = JSON.stringify(wire);
  const out = new Uint8Array(Buffer.byteLength(json, "utf8") + 1);
  out[0] = FORMAT_VERSION;
  Buffer.from(out.buffer, out.byteOffset, out.byteLength).write(json, 1, "utf8");
  return out;
}

/** Decodes an entry's data; throws on anything malformed. Does not run the semantic checks. */
export function decodeCommand(data: Uint8Array): Command {
  if (data[0] !== FORMAT_VERSION) throw new Error(`unknown command format ${data[0]}`);
  const json: unknown = JSON.parse(Buffer.from(data.buffer, data.byteOffset + 1, data.length - 1).toString("utf8"));
  const parsed = WireCommandSchema.safeParse(json);
  if (!parsed.success) throw new Error(`malformed command: ${z.prettifyError(parsed.error)}`);
  const w = parsed.data;
  if (w.t === "m") {
    return { kind: "migrate", requestId: w.id, version: w.v, statements: w.s.map(statementFromWire) };
  }
  return {
    kind: "batch",
    requestId: w.id,
    statements: w.s.map(statementFromWire),
    preconditions: w.pc.map((p) => ({
      sql: p.q,
      params: paramsFromWire(p.p),
      ...(p.r !== undefined && { expectRows: p.r }),
      ...(p.v !== undefined && { expectValue: paramFromWire(p.v) }),
      ...(p.m !== undefined && { message: p.m }),
    })),
  };
}

// ---- semantic checks ----

export class InvalidCommandError extends Error {
  override name = "InvalidCommandError";
}

// Statements that would break the batch's transaction (BEGIN, COMMIT...), reach
// outside the database (ATTACH) or change connection settings (PRAGMA).
const FORBIDDEN_LEADING = new Set([
  "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "ATTACH", "DETACH", "VACUUM", "PRAGMA",
]);
const READ_LEADING = new Set(["SELECT", "WITH", "VALUES"]);

// The verdict on a SQL text never changes, and the same few texts come back in
// every command: remember the last verdicts rather than tokenize each time.
const verdicts = new Map<string, string | null>();
const MAX_VERDICTS = 2048;

/** Why one SQL text is not acceptable in a command, or null. */
function sqlProblem(sql: string, readOnly: boolean): string | null {
  const key = (readOnly ? "r:" : "w:") + sql;
  const known = verdicts.get(key);
  if (known !== undefined) return known;
  const verdict = judgeSql(sql, readOnly);
  if (verdicts.size >= MAX_VERDICTS) verdicts.delete(verdicts.keys().next().value!);
  verdicts.set(key, verdict);
  return verdict;
}

function judgeSql(sql: string, readOnly: boolean): string | null {
  let tokens;
  try {
    tokens = tokenize(sql);
  } catch (e) {
    return (e as Error).message;
  }
  const lead = leadingKeyword(tokens);
  if (lead === "") return "not a SQL statement";
  if (hasSecondStatement(tokens)) return "contains more than one statement";
  if (FORBIDDEN_LEADING.has(lead)) return `${lead} is not allowed in a command`;
  if (readOnly && !READ_LEADING.has(lead)) return `must be a read-only SELECT, got ${lead}`;
  const internal = internalNames(tokens);
  if (internal.length > 0) return `touches internal table ${internal[0]}`;
  return nondeterminism(tokens);
}

/**
 * Throws InvalidCommandError unless the command is well-formed, small enough
 * and deterministic. Pure, so the state machine repeats it at apply time and
 * every replica refuses the same entries.
 */
export function checkCommand(cmd: Command, encodedBytes: number): void {
  const fail = (msg: string): never => {
    throw new InvalidCommandError(msg);
  };
  if (encodedBytes > MAX_COMMAND_BYTES) fail(`command is ${encodedBytes} bytes, the limit is ${MAX_COMMAND_BYTES}`);
  if (cmd.requestId.length === 0 || cmd.requestId.length > MAX_REQUEST_ID_LENGTH) fail("bad requestId");
  if (cmd.statements.length > MAX_STATEMENTS) {
    fail(`${cmd.statements.length} statements, the limit is ${MAX_STATEMENTS}`);
  }
  if (cmd.kind === "migrate" && (!Number.isSafeInteger(cmd.version) || cmd.version < 1)) {
    fail(`bad schema version ${cmd.version}`);
  }
  if (cmd.kind === "batch") {
    if (cmd.statements.length === 0) fail("empty batch");
    if (cmd.preconditions.length > MAX_PRECONDITIONS) {
      fail(`${cmd.preconditions.length} preconditions, the limit is ${MAX_PRECONDITIONS}`);
    }
    cmd.preconditions.forEach((p, i) => {
      const problem = sqlProblem(p.sql, true);
      if (problem) fail(`precondition ${i}: ${problem}`);
    });
  }
  cmd.statements.forEach((s, i) => {
    const problem = sqlProblem(s.sql, false);
    if (problem) fail(`statement ${i}: ${problem}`);
  });
}

/**
 * Validates a command from an untrusted caller before it is proposed and
 * returns it with its encoding (what to propose). Throws InvalidCommandError.
 */
export function validateCommand(input: unknown): { command: Command; data: Uint8Array } {
  const parsed = CommandSchema.safeParse(input);
  if (!parsed.success) throw new InvalidCommandError(`malformed command: ${z.prettifyError(parsed.error)}`);
  const data = encodeCommand(parsed.data);
  checkCommand(parsed.data, data.length);
  return { command: parsed.data, data };
}
