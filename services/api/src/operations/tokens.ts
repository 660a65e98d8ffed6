// Trust tokens (`lxc config trust add`): a `token` class operation whose metadata
// carries what the client turns into the printed token (LXD's
// api.CertificateAddToken: base64 of {client_name, fingerprint, addresses, secret,
// expires_at}). `lxc remote add NAME TOKEN` sends the secret as `password`; a
// running token with that secret admits the client's certificate once, in the same
// replicated write that ends the token, so a token can never be used twice.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { DatabaseClientError, type ExecPrecondition, type ExecStatement } from "../../../raft/src/node/database-client.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";
import type { TrustedCertificate } from "../trust.ts";
import { finished, insertStatements, listOperations, STATUS, stillRunning, updateStatements, type StoredOperation } from "./store.ts";

export interface TokenRequest {
  name: string;
  restricted: boolean;
  projects: string[];
}

/** Creates a token operation (running, cancellable) and returns it, secret included. */
export async function createToken(db: Database, opts: { request: TokenRequest; addresses: string[]; fingerprint: string; location: string }): Promise<StoredOperation> {
  const now = new Date().toISOString();
  const op: StoredOperation = {
    id: randomUUID(),
    class: "token",
    description: "Executing operation",
    created_at: now,
    updated_at: now,
    status: "Running",
    status_code: STATUS.Running,
    resources: null,
    metadata: {
      addresses: opts.addresses,
      fingerprint: opts.fingerprint,
      request: { certificate: "", name: opts.request.name, password: "", projects: opts.request.projects, restricted: opts.request.restricted, token: true, type: "client" },
      secret: randomBytes(32).toString("hex"),
    },
    may_cancel: true,
    err: "",
    location: opts.location,
    project: "default",
  };
  await db.exec(insertStatements(op));
  return op;
}

/** What encodeToken needs of a token operation (its API view will do). */
export type TokenOperation = Pick<StoredOperation, "metadata">;

/** The token encoded the way `lxc` prints it (shared/api CertificateAddToken.String()). */
export function encodeToken(op: TokenOperation): string {
  const md = op.metadata ?? {};
  const request = (md.request ?? {}) as { name?: string };
  return Buffer.from(
    JSON.stringify({ client_name: request.name ?? "", fingerprint: md.fingerprint, addresses: md.addresses, secret: md.secret, expires_at: "0001-01-01T00:00:00Z" }),
  ).toString("base64");
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/**
 * The secret a `password` carries: `lxc remote add NAME TOKEN` (5.0.2) sends the
 * whole encoded token, which the server decodes (as LXD's certificateTokenValid does).
 */
export function tokenSecret(password: string): string {
  if (!password.startsWith("ey")) return password; // base64 of a JSON object starts "ey"
  try {
    const t = JSON.parse(Buffer.from(password, "base64").toString("utf8")) as { secret?: unknown };
    return typeof t.secret === "string" ? t.secret : password;
  } catch {
    return password;
  }
}

/** The running token whose secret `password` carries, if any (constant-time comparison). */
export async function findToken(db: Database, password: string): Promise<StoredOperation | undefined> {
  const secret = tokenSecret(password);
  if (!secret) return undefined;
  const want = digest(secret);
  for (const op of await listOperations(db, { class: "token", running: true })) {
    const s = op.metadata?.secret;
    if (typeof s === "string" && timingSafeEqual(digest(s), want)) return op;
  }
  return undefined;
}

/** A password that is (or carries) a token secret (64 hex digits), for a clearer refusal. */
export function looksLikeTokenSecret(password: string): boolean {
  return /^[0-9a-f]{64}$/.test(tokenSecret(password));
}

/**
 * Adds `cert` to the trust store and ends the token, atomically: either both
 * happen or neither (the token was used or revoked meanwhile, or the certificate is
 * already trusted).
 */
export async function redeemToken(db: Database, token: StoredOperation, cert: TrustedCertificate, extra: ExecStatement[] = []): Promise<void> {
  const done = finished(token, STATUS.Success);
  try {
    await db.exec([certificateInsert(cert), ...updateStatements(done), ...extra], { preconditions: [stillRunning(token.id), notYetTrusted(cert.fingerprint)] });
  } catch (e) {
    if (e instanceof DatabaseClientError && e.code === grpc.status.FAILED_PRECONDITION) {
      if (e.message.includes(ALREADY_TRUSTED)) throw ApiError.badRequest("Certificate already in trust store");
      throw new ApiError(403, "not authorized: the trust token was already used or revoked");
    }
    throw e;
  }
}

const ALREADY_TRUSTED = "already trusted";

/** The statement that adds `cert` to the trust store (the `certificates` table of trust.ts). */
export function certificateInsert(cert: TrustedCertificate): ExecStatement {
  return {
    sql: "INSERT INTO certificates (fingerprint, name, type, certificate, restricted, projects) VALUES (?, ?, ?, ?, ?, ?)",
    params: [cert.fingerprint, cert.name, cert.type, cert.certificate, cert.restricted ? 1 : 0, JSON.stringify(cert.projects)],
  };
}

/** Precondition: the certificate is not trusted yet. */
export function notYetTrusted(fp: string): ExecPrecondition {
  return { sql: "SELECT 1 FROM certificates WHERE fingerprint = ?", params: [fp], expectRows: 0, message: ALREADY_TRUSTED };
}

/** Whether a failed write failed on notYetTrusted. */
export function failedAsAlreadyTrusted(e: unknown): boolean {
  return e instanceof DatabaseClientError && e.code === grpc.status.FAILED_PRECONDITION && e.message.includes(ALREADY_TRUSTED);
}
