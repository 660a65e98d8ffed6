// Background operations (LXD's /1.0/operations) kept in the replicated
// `operations` table, so that any gateway answers for any operation. Every change
// to an operation also publishes an `operation` event in the same write.
import type { FastifyReply } from "fastify";
import * as grpc from "@grpc/grpc-js";
import { DatabaseClientError, type ExecPrecondition, type ExecStatement } from "../../../raft/src/node/database-client.ts";
import type { Param } from "../../../raft/src/db/param.ts";
import { publishStatements } from "../events/events.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";

export type OperationClass = "task" | "websocket" | "token";

/** LXD's status codes (shared/api/status_code.go). */
export const STATUS = {
  OperationCreated: 100,
  Running: 103,
  Cancelling: 104,
  Pending: 105,
  Success: 200,
  Failure: 400,
  Cancelled: 401,
} as const;

const STATUS_NAMES: Record<number, string> = {
  100: "Operation created",
  101: "Started",
  102: "Stopped",
  103: "Running",
  104: "Cancelling",
  105: "Pending",
  106: "Starting",
  107: "Stopping",
  108: "Aborting",
  109: "Freezing",
  110: "Frozen",
  111: "Thawed",
  112: "Error",
  113: "Ready",
  200: "Success",
  400: "Failure",
  401: "Cancelled",
};

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? "Unknown";
}

/** A final status: the operation will not change any more. */
export function isFinal(code: number): boolean {
  return code >= 200;
}

/** LXD's api.Operation. */
export interface Operation {
  id: string;
  class: OperationClass;
  description: string;
  created_at: string;
  updated_at: string;
  status: string;
  status_code: number;
  resources: Record<string, string[] | null> | null;
  metadata: Record<string, unknown> | null;
  may_cancel: boolean;
  err: string;
  location: string;
}

export interface StoredOperation extends Operation {
  /** "" when the operation belongs to no project. */
  project: string;
}

/** Finished operations stay listed this long (LXD forgets them after 5 s; we keep them a little longer). */
export const FINISHED_KEPT_MS = 60_000;

const COLUMNS = "id, class, description, status_code, created_at, updated_at, may_cancel, err, location, project, resources, metadata";

function parseJson<T>(v: Param): T | null {
  if (v === null || v === undefined) return null;
  try {
    return JSON.parse(String(v)) as T;
  } catch {
    return null;
  }
}

function fromRow(row: Param[]): StoredOperation {
  const [id, cls, description, code, created, updated, mayCancel, err, location, project, resources, metadata] = row;
  const status_code = Number(code);
  return {
    id: String(id),
    class: String(cls) as OperationClass,
    description: String(description),
    created_at: String(created),
    updated_at: String(updated),
    status: statusName(status_code),
    status_code,
    resources: parseJson(resources),
    metadata: parseJson(metadata),
    may_cancel: Number(mayCancel) !== 0,
    err: String(err ?? ""),
    location: String(location ?? ""),
    project: String(project ?? ""),
  };
}

/** The API view of a stored operation (without the project column). */
export function view(op: StoredOperation): Operation {
  const { project: _project, ...rest } = op;
  return rest;
}

/** What an `operation` event carries: the operation without secrets (events go to every listener). */
export function eventView(op: StoredOperation): Operation {
  const v = view(op);
  if (v.metadata && "secret" in v.metadata) {
    const { secret: _secret, ...md } = v.metadata;
    v.metadata = md;
  }
  return v;
}

function operationEvent(op: StoredOperation): ExecStatement[] {
  const ev = { type: "operation" as const, timestamp: op.updated_at, metadata: eventView(op), location: op.location, ...(op.project ? { project: op.project } : {}) };
  return publishStatements(ev);
}

function pruneFinished(now: string): ExecStatement {
  const cutoff = new Date(Date.parse(now) - FINISHED_KEPT_MS).toISOString();
  return { sql: "DELETE FROM operations WHERE status_code >= 200 AND updated_at < ?", params: [cutoff] };
}

/** The statements that record a new operation (and publish its event). */
export function insertStatements(op: StoredOperation): ExecStatement[] {
  return [
    {
      sql: `INSERT INTO operations (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      params: [
        op.id,
        op.class,
        op.description,
        op.status_code,
        op.created_at,
        op.updated_at,
        op.may_cancel ? 1 : 0,
        op.err,
        op.location,
        op.project,
        op.resources === null ? null : JSON.stringify(op.resources),
        op.metadata === null ? null : JSON.stringify(op.metadata),
      ],
    },
    pruneFinished(op.updated_at),
    ...operationEvent(op),
  ];
}

/** The statements that move `op` to `next` (status, metadata, err), publishing its event. */
export function updateStatements(next: StoredOperation): ExecStatement[] {
  return [
    {
      sql: "UPDATE operations SET status_code = ?, updated_at = ?, may_cancel = ?, err = ?, metadata = ? WHERE id = ?",
      params: [next.status_code, next.updated_at, next.may_cancel ? 1 : 0, next.err, next.metadata === null ? null : JSON.stringify(next.metadata), next.id],
      expectChanges: 1,
    },
    pruneFinished(next.updated_at),
    ...operationEvent(next),
  ];
}

/** Precondition: the operation is still running (e.g. a token not yet used or revoked). */
export function stillRunning(id: string): ExecPrecondition {
  return { sql: "SELECT 1 FROM operations WHERE id = ? AND status_code = 103", params: [id], expectRows: 1, message: "the operation is no longer running" };
}

/** A finished copy of `op`: status, time, and no secret left in its metadata. */
export function finished(op: StoredOperation, status_code: number, err = ""): StoredOperation {
  const metadata = op.metadata && "secret" in op.metadata ? Object.fromEntries(Object.entries(op.metadata).filter(([k]) => k !== "secret")) : op.metadata;
  return { ...op, status_code, status: statusName(status_code), updated_at: new Date().toISOString(), err, metadata, may_cancel: false };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function getOperation(db: Database, id: string): Promise<StoredOperation> {
  if (!UUID.test(id)) throw ApiError.notFound("Operation not found");
  const r = await db.query(`SELECT ${COLUMNS} FROM operations WHERE id = ?`, [id]);
  if (r.rows.length === 0) throw ApiError.notFound("Operation not found");
  return fromRow(r.rows[0]);
}

export async function listOperations(db: Database, where: { class?: OperationClass; running?: boolean } = {}): Promise<StoredOperation[]> {
  const clauses: string[] = [];
  const params: Param[] = [];
  if (where.class) {
    clauses.push("class = ?");
    params.push(where.class);
  }
  if (where.running) clauses.push("status_code = 103");
  const r = await db.query(`SELECT ${COLUMNS} FROM operations ${clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""} ORDER BY created_at, id`, params);
  return r.rows.map(fromRow);
}

/** Cancels a running, cancellable operation (LXD's DELETE /1.0/operations/<id>): 400 otherwise, in LXD's words. */
export async function cancelOperation(db: Database, id: string): Promise<StoredOperation> {
  const op = await getOperation(db, id);
  if (op.status_code !== STATUS.Running) throw ApiError.badRequest("Only running operations can be cancelled");
  if (!op.may_cancel) throw ApiError.badRequest("This operation can't be cancelled");
  const next = finished(op, STATUS.Cancelled);
  try {
    await db.exec(updateStatements(next), { preconditions: [stillRunning(id)] });
  } catch (e) {
    if (e instanceof DatabaseClientError && e.code === grpc.status.FAILED_PRECONDITION) {
      throw ApiError.badRequest("Only running operations can be cancelled");
    }
    throw e;
  }
  return next;
}

/** LXD's async response (HTTP 202): the operation's URL and its current state. */
export function sendAsync(reply: FastifyReply, op: Operation): FastifyReply {
  const url = `/1.0/operations/${op.id}`;
  return reply
    .code(202)
    .header("location", url)
    .type("application/json")
    .send({ type: "async", status: "Operation created", status_code: 100, operation: url, error_code: 0, error: "", metadata: op });
}
