// Task operations whose work runs in this gateway (image import, instance create,
// start/stop, delete): the operation is recorded Running before the 202 goes out,
// progress is written into its metadata (throttled), and it ends Success or Failure
// in the same database write as the change it made (rows, lifecycle events).
//
// The work lives in this gateway's process: if the gateway dies meanwhile, the
// operation stays Running (a new gateway does not resume it yet).
import { randomUUID } from "node:crypto";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import type { Database } from "../schema.ts";
import { finished, insertStatements, STATUS, statusName, updateStatements, type OperationClass, type StoredOperation } from "./store.ts";

export interface TaskResult {
  /** The operation's final metadata (default: the last progress metadata). */
  metadata?: Record<string, unknown> | null;
  /** Written in the same batch as the operation's success. */
  statements?: ExecStatement[];
}

export interface TaskContext {
  /** Replaces the operation's metadata (written at most every 200 ms, the last one always). */
  progress(metadata: Record<string, unknown>): void;
}

export interface TaskOptions {
  description: string;
  /** The operation's id (default: a new UUID). */
  id?: string;
  /** Default "task"; "websocket" for exec (its metadata names the websockets' secrets). */
  class?: OperationClass;
  project: string;
  /** The member the work is for (the operation's `location`). */
  location: string;
  resources?: Record<string, string[]> | null;
  metadata?: Record<string, unknown> | null;
  /** Statements written with the operation's creation. */
  statements?: ExecStatement[];
  run(t: TaskContext): Promise<TaskResult | void>;
  /** Statements written with the operation's failure (e.g. undo a reservation). */
  onFailure?(err: unknown): ExecStatement[];
  /** How a failure reads in the operation's `err` (default: the error's message). */
  describe?(err: unknown): string;
  log?(line: string): void;
}

/** Records a running task operation and starts its work; resolves once recorded. */
export async function startTask(db: Database, opts: TaskOptions): Promise<{ op: StoredOperation; done: Promise<StoredOperation> }> {
  const op = await recordTask(db, opts);
  return { op, done: continueTask(db, op, opts) };
}

/** Records a running task operation (with `opts.statements`) without starting any work: someone else will (see continueTask). */
export async function recordTask(db: Database, opts: Omit<TaskOptions, "run">): Promise<StoredOperation> {
  const now = new Date().toISOString();
  const op: StoredOperation = {
    id: opts.id ?? randomUUID(),
    class: opts.class ?? "task",
    description: opts.description,
    created_at: now,
    updated_at: now,
    status: statusName(STATUS.Running),
    status_code: STATUS.Running,
    resources: opts.resources ?? null,
    metadata: opts.metadata ?? null,
    may_cancel: false,
    err: "",
    location: opts.location,
    project: opts.project,
  };
  await db.exec([...insertStatements(op), ...(opts.statements ?? [])]);
  return op;
}

/**
 * Runs the work of a recorded, running operation `op` (this process's own, or one
 * another process recorded and a coordinator took over): progress into its metadata,
 * and its end (Success with `result.statements`, or Failure) in one write.
 */
export function continueTask(db: Database, op: StoredOperation, opts: Pick<TaskOptions, "run" | "onFailure" | "describe" | "log">): Promise<StoredOperation> {
  let current = op;
  let lastWrite = 0;
  let pending: Record<string, unknown> | undefined;
  let writing: Promise<void> = Promise.resolve();
  const flush = () => {
    if (!pending) return;
    const next: StoredOperation = { ...current, metadata: pending, updated_at: new Date().toISOString() };
    pending = undefined;
    current = next;
    lastWrite = Date.now();
    writing = writing.then(() => db.exec(updateStatements(next)).then(() => undefined, () => undefined));
  };
  let timer: NodeJS.Timeout | undefined;
  const ctx: TaskContext = {
    progress(metadata) {
      pending = metadata;
      if (Date.now() - lastWrite >= 200) flush();
      else if (!timer) timer = setTimeout(() => ((timer = undefined), flush()), 200);
    },
  };

  const done = (async (): Promise<StoredOperation> => {
    let result: TaskResult | void = undefined;
    let failure: unknown;
    try {
      result = await opts.run(ctx);
    } catch (e) {
      failure = e;
    }
    if (timer) clearTimeout(timer);
    if (pending) current = { ...current, metadata: pending };
    await writing;
    if (failure === undefined) {
      const metadata = result && result.metadata !== undefined ? result.metadata : current.metadata;
      const end = finished({ ...current, metadata }, STATUS.Success);
      try {
        await db.exec([...updateStatements(end), ...(result?.statements ?? [])]);
        return end;
      } catch (e) {
        failure = e;
      }
    }
    const err = opts.describe ? opts.describe(failure) : failure instanceof Error ? failure.message : String(failure);
    const end = finished(current, STATUS.Failure, err);
    let undo: ExecStatement[] = [];
    try {
      undo = opts.onFailure?.(failure) ?? [];
    } catch {
      undo = [];
    }
    await db.exec([...updateStatements(end), ...undo]).catch((e: unknown) => opts.log?.(`operation ${op.id}: recording its failure failed: ${String(e)}`));
    return end;
  })();
  done.catch((e: unknown) => opts.log?.(`operation ${op.id}: ${String(e)}`));
  return done;
}
