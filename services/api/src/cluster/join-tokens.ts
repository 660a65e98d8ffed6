// Cluster join tokens (`lxc cluster add NAME`): a running `token` operation whose
// metadata carries serverName, secret, fingerprint, addresses and expiresAt, the
// camelCase keys the 5.0.2 client turns into the printed token (base64 of
// {server_name, fingerprint, addresses, secret, expires_at}). A token is bound to
// its member name, single use (redeemed in the same replicated write that records
// the joining member), and expires after `cluster.join_token_expiry`.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";
import { finished, insertStatements, listOperations, STATUS, stillRunning, updateStatements, type StoredOperation } from "../operations/store.ts";
import type { ExecPrecondition, ExecStatement } from "../../../raft/src/node/database-client.ts";

/** What `lxc` decodes and `shoal member --join` reads. */
export const joinTokenSchema = z.object({
  server_name: z.string().min(1),
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  addresses: z.array(z.string()).min(1),
  secret: z.string().min(1),
  expires_at: z.string(),
});
export type JoinToken = z.infer<typeof joinTokenSchema>;

export function encodeJoinToken(t: JoinToken): string {
  const ordered = { server_name: t.server_name, fingerprint: t.fingerprint, addresses: t.addresses, secret: t.secret, expires_at: t.expires_at };
  return Buffer.from(JSON.stringify(ordered)).toString("base64");
}

export function decodeJoinToken(text: string): JoinToken {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(text.trim(), "base64").toString("utf8"));
  } catch {
    throw new Error("the join token is not base64 of a JSON object");
  }
  const parsed = joinTokenSchema.safeParse(json);
  if (!parsed.success) throw new Error(`the join token is malformed: ${parsed.error.issues[0]?.path.join(".")} ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** Member names: what LXD accepts as a host name label, and not a group reference. */
export function checkMemberName(name: string): void {
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(name)) {
    throw ApiError.badRequest(`Invalid cluster member name "${name}": use letters, digits and dashes (at most 63, not starting or ending with a dash)`);
  }
}

/** Cancels every running join token for `name`, then creates a new one (at most one live token per name). */
export async function createJoinToken(
  db: Database,
  opts: { name: string; addresses: string[]; fingerprint: string; location: string; expiryMs: number; extra?: ExecStatement[] },
): Promise<StoredOperation> {
  const now = new Date();
  const previous = (await runningJoinTokens(db)).filter((op) => op.metadata?.serverName === opts.name);
  const op: StoredOperation = {
    id: randomUUID(),
    class: "token",
    description: "Executing operation",
    created_at: now.toISOString(),
    updated_at: now.toISOString(),
    status: "Running",
    status_code: STATUS.Running,
    resources: { cluster: null },
    metadata: {
      addresses: opts.addresses,
      expiresAt: new Date(now.getTime() + opts.expiryMs).toISOString(),
      fingerprint: opts.fingerprint,
      secret: randomBytes(32).toString("hex"),
      serverName: opts.name,
    },
    may_cancel: true,
    err: "",
    location: opts.location,
    project: "default",
  };
  await db.exec([...previous.flatMap((p) => updateStatements(finished(p, STATUS.Cancelled))), ...insertStatements(op), ...(opts.extra ?? [])]);
  return op;
}

/** Running join tokens (token operations that name a member, unlike trust tokens). */
export async function runningJoinTokens(db: Database): Promise<StoredOperation[]> {
  return (await listOperations(db, { class: "token", running: true })).filter((op) => typeof op.metadata?.serverName === "string");
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/**
 * The running token for `name` with `secret`. A match that has expired is cancelled
 * and refused, as LXD does; no match is refused in LXD's words.
 */
export async function findJoinToken(db: Database, name: string, secret: string): Promise<StoredOperation> {
  const want = digest(secret);
  for (const op of await runningJoinTokens(db)) {
    const s = op.metadata?.secret;
    if (op.metadata?.serverName !== name || typeof s !== "string" || !timingSafeEqual(digest(s), want)) continue;
    if (Date.parse(String(op.metadata?.expiresAt)) <= Date.now()) {
      await db.exec(updateStatements(finished(op, STATUS.Cancelled)), { preconditions: [stillRunning(op.id)] }).catch(() => undefined);
      throw new ApiError(403, "Token has expired");
    }
    return op;
  }
  throw new ApiError(403, "No matching cluster join operation found");
}

/** The statements that end a join token as used, with the precondition that it still runs (single use). */
export function redeemStatements(op: StoredOperation): { statements: ExecStatement[]; precondition: ExecPrecondition } {
  return { statements: updateStatements(finished(op, STATUS.Success)), precondition: stillRunning(op.id) };
}
