// A client of the replicated database that knows several nodes. Writes carry a
// request id and are retried with the same id until the cluster gives a definite
// answer, so a caller always learns whether its write committed: retries after a
// leader crash are applied at most once (the state machine remembers request ids).

import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import * as pb from "../../../../proto/gen/database.ts";
import type { Param } from "../db/param.ts";
import type { TlsConfig } from "../transport/credentials.ts";
import { LeaderClients } from "./leader-clients.ts";
import { paramToValue, valueToParam } from "./value-codec.ts";

export interface ExecStatement {
  sql: string;
  params?: Param[];
  expectChanges?: number;
}

export interface ExecPrecondition {
  sql: string;
  params?: Param[];
  expectRows?: number;
  expectValue?: Param;
  message?: string;
}

export interface ExecResult {
  appliedIndex: number;
  results: { changes: number; lastInsertRowid: number }[];
}

export interface Rows {
  columns: string[];
  rows: Param[][];
  appliedIndex: number;
}

/** Codes after which the same request may be retried (elsewhere). */
const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED]);

export class DatabaseClientError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

interface PendingWrite {
  req: pb.ExecRequest;
  resolve: (r: ExecResult) => void;
  reject: (e: Error) => void;
  deadline: number;
  attempt: number;
}

/** The ExecRequest a write is sent as (a fresh request id unless given: retries reuse it). */
export function execRequest(statements: ExecStatement[], opts: { preconditions?: ExecPrecondition[]; requestId?: string } = {}): pb.ExecRequest {
  return {
    requestId: opts.requestId ?? randomUUID(),
    statements: statements.map((s) => ({
      sql: s.sql,
      params: (s.params ?? []).map(paramToValue),
      ...(s.expectChanges !== undefined ? { expectChanges: s.expectChanges } : {}),
    })),
    preconditions: (opts.preconditions ?? []).map((p) => ({
      sql: p.sql,
      params: (p.params ?? []).map(paramToValue),
      message: p.message ?? "",
      ...(p.expectRows !== undefined ? { expectRows: p.expectRows } : {}),
      ...(p.expectValue !== undefined ? { expectValue: paramToValue(p.expectValue) } : {}),
    })),
  };
}

export class ClusterDatabaseClient {
  private readonly clients: LeaderClients;
  private preferred: string;
  private rotation = 0;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;

  constructor(
    private readonly addresses: string[],
    tls: TlsConfig,
    private readonly timeoutMs = 15_000,
  ) {
    if (addresses.length === 0) throw new Error("no database addresses");
    this.clients = new LeaderClients(tls);
    this.preferred = addresses[0];
  }

  async exec(statements: ExecStatement[], opts: { preconditions?: ExecPrecondition[]; requestId?: string } = {}): Promise<ExecResult> {
    const req = execRequest(statements, opts);
    return new Promise((resolve, reject) => this.enqueue({ req, resolve, reject, deadline: Date.now() + this.timeoutMs, attempt: 0 }));
  }

  // Concurrent exec() calls are coalesced into one ExecMany call per event-loop
  // turn (up to 256): one RPC instead of one each, while every write remains its
  // own log entry with its own outcome and retries.
  private enqueue(w: PendingWrite): void {
    this.pending.push(w);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.pending.splice(0, 256);
    if (this.pending.length && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => void this.flush());
    }
    if (!batch.length) return;
    const address = this.preferred;
    const deadline = Math.min(Date.now() + 5_000, Math.max(...batch.map((w) => w.deadline)));
    try {
      const reply = await this.clients.call<pb.ExecManyRequest, pb.ExecManyReply>(
        address,
        "execMany",
        { requests: batch.map((w) => w.req) },
        new grpc.Metadata(),
        deadline,
      );
      reply.outcomes.forEach((o, i) => {
        const w = batch[i];
        if (o.errorCode === 0 && o.reply) w.resolve({ appliedIndex: o.reply.appliedIndex, results: o.reply.results });
        else if (RETRYABLE.has(o.errorCode)) {
          this.follow(o.leader.split("=")[1], address);
          this.retry(w, o.errorCode, o.errorMessage);
        } else w.reject(new DatabaseClientError(o.errorCode, o.errorMessage));
      });
    } catch (e) {
      const err = e as grpc.ServiceError;
      if (!RETRYABLE.has(err.code)) {
        for (const w of batch) w.reject(new DatabaseClientError(err.code, err.details || err.message));
        return;
      }
      this.follow(err.metadata?.get("shoal-leader")[0]?.toString().split("=")[1], address);
      for (const w of batch) this.retry(w, err.code, err.details || err.message);
    }
  }

  /** Goes to the leader a node named, else to the next known node. */
  private follow(hint: string | undefined, failed: string): void {
    if (this.preferred !== failed) return; // someone already moved on
    this.preferred = hint && hint !== failed ? hint : this.addresses[++this.rotation % this.addresses.length];
  }

  private retry(w: PendingWrite, code: grpc.status, message: string): void {
    if (Date.now() > w.deadline) {
      w.reject(new DatabaseClientError(code, `no definite answer within ${this.timeoutMs} ms: ${message}`));
      return;
    }
    w.attempt++;
    setTimeout(() => this.enqueue(w), Math.min(50, 5 * 2 ** Math.min(w.attempt, 4)));
  }

  async query(sql: string, params: Param[] = [], opts: { stale?: boolean; minIndex?: number } = {}): Promise<Rows> {
    const req: pb.QueryRequest = {
      sql,
      params: params.map(paramToValue),
      consistency: opts.stale ? pb.Consistency.STALE : pb.Consistency.LINEARIZABLE,
      minIndex: opts.minIndex ?? 0,
    };
    const reply = await this.retrying<pb.QueryRequest, pb.QueryReply>("query", req);
    return { columns: reply.columns, rows: reply.rows.map((r) => r.values.map(valueToParam)), appliedIndex: reply.appliedIndex };
  }

  /**
   * Brings the schema up to the newest of `migrations` (versions 1, 2, 3...), each
   * through the log. Safe to repeat and to run from several callers at once: a
   * migration's request id is derived from its version, so it applies once.
   */
  async migrate(migrations: { version: number; statements: string[] }[]): Promise<{ fromVersion: number; toVersion: number; appliedIndex: number }> {
    return this.retrying<pb.MigrateRequest, pb.MigrateReply>("migrate", { requestId: randomUUID(), migrations });
  }

  /**
   * Follows the applied changes of one node (any node: each applies the same log),
   * reconnecting to the next known node when the stream breaks. `onReset` is called
   * whenever changes may have been missed (at start and after a reconnect), so a
   * cache built on this stream knows to start over.
   */
  watch(handlers: { onChange(e: pb.WatchEvent): void; onLive(): void; onReset(): void }): () => void {
    let stopped = false;
    let stream: grpc.ClientReadableStream<pb.WatchEvent> | undefined;
    let attempt = 0;
    const open = () => {
      if (stopped) return;
      handlers.onReset();
      const address = this.addresses[attempt % this.addresses.length];
      // From now on (index 0): whoever caches on this stream starts over at each reset.
      const s = this.clients.client(address).watch({ fromIndex: 0 });
      stream = s;
      // The server sends its headers once it is subscribed: from then on nothing is missed.
      s.on("metadata", () => {
        if (stream === s) handlers.onLive();
      });
      s.on("data", (e: pb.WatchEvent) => {
        attempt = 0;
        handlers.onChange(e);
      });
      const again = () => {
        if (stream !== s || stopped) return;
        stream = undefined;
        handlers.onReset();
        attempt++;
        setTimeout(open, Math.min(1_000, 20 * 2 ** Math.min(attempt, 5)));
      };
      s.on("error", again);
      s.on("end", again);
    };
    open();
    return () => {
      stopped = true;
      stream?.cancel();
    };
  }

  /** Membership changes, on the leader (followed through leader hints). */
  async addNode(id: string, address: string, role: pb.AddNodeRequest["role"]): Promise<pb.ConfigReply> {
    return this.retrying<pb.AddNodeRequest, pb.ConfigReply>("addNode", { id, address, role });
  }

  async assignRole(id: string, role: pb.AssignRoleRequest["role"]): Promise<pb.ConfigReply> {
    return this.retrying<pb.AssignRoleRequest, pb.ConfigReply>("assignRole", { id, role });
  }

  async removeNode(id: string): Promise<pb.ConfigReply> {
    return this.retrying<pb.RemoveNodeRequest, pb.ConfigReply>("removeNode", { id });
  }

  async transferLeadership(to?: string): Promise<pb.TransferLeadershipReply> {
    return this.retrying<pb.TransferLeadershipRequest, pb.TransferLeadershipReply>("transferLeadership", to ? { to } : {});
  }

  /** Adds database node addresses learnt later (members that joined), for failover. */
  learnAddresses(addresses: string[]): void {
    for (const a of addresses) if (a && !this.addresses.includes(a)) this.addresses.push(a);
  }

  /** One node's status; retried for a few seconds while that node is (re)starting. */
  async status(address = this.preferred): Promise<pb.StatusReply> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        return await this.clients.call<pb.StatusRequest, pb.StatusReply>(address, "status", {}, new grpc.Metadata(), deadline);
      } catch (e) {
        if ((e as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || Date.now() > deadline) throw e;
        await sleep(50);
      }
    }
  }

  /** Calls `method`, following leader hints and trying other nodes until a definite answer or the deadline. */
  private async retrying<Req, Res>(method: string, req: Req): Promise<Res> {
    const deadline = Date.now() + this.timeoutMs;
    let attempt = 0;
    let last: grpc.ServiceError | undefined;
    while (Date.now() < deadline) {
      const address = this.preferred;
      try {
        const res = await this.clients.call<Req, Res>(address, method, req, new grpc.Metadata(), Math.min(deadline, Date.now() + 5_000));
        return res;
      } catch (e) {
        const err = e as grpc.ServiceError;
        if (!RETRYABLE.has(err.code)) throw new DatabaseClientError(err.code, err.details || err.message);
        last = err;
        const hint = err.metadata?.get("shoal-leader")[0]?.toString().split("=")[1];
        if (hint) this.learnAddresses([hint]);
        this.preferred = hint && hint !== address ? hint : this.addresses[++attempt % this.addresses.length];
        await sleep(Math.min(50, 5 * 2 ** Math.min(attempt, 4)));
      }
    }
    throw new DatabaseClientError(last?.code ?? grpc.status.DEADLINE_EXCEEDED, `no definite answer within ${this.timeoutMs} ms: ${last?.details ?? "timeout"}`);
  }

  close(): void {
    this.clients.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
