// The gRPC `Database` service of a node. Writes and membership changes that
// reach a follower are forwarded to the leader once (a forwarded call carries a
// marker so two nodes with different ideas of the leader cannot bounce it back and
// forth); reads are served locally, after a ReadIndex round when linearizable.

import * as grpc from "@grpc/grpc-js";
import * as pb from "../../../../proto/gen/database.ts";
import { Role } from "../../../../proto/gen/raft.ts";
import type { ConfChange } from "../core/confchange.ts";
import type { Role as CoreRole } from "../core/types.ts";
import type { Batch, Migrate } from "../db/command.ts";
import { InvalidCommandError } from "../db/command.ts";
import { migrationRequestId } from "../db/migrations.ts";
import type { ApplyResult } from "../db/result.ts";
import { roleFromProto, roleToProto } from "../transport/codec.ts";
import type { TlsConfig } from "../transport/credentials.ts";
import type { DatabaseNode } from "./database-node.ts";
import { DatabaseError } from "./errors.ts";
import { LeaderClients } from "./leader-clients.ts";
import { paramToValue, valueToParam } from "./value-codec.ts";

const FORWARDED = "shoal-forwarded";

export function addDatabaseService(server: grpc.Server, node: DatabaseNode, tls: TlsConfig): { close(): void } {
  const leaders = new LeaderClients(tls);
  server.addService(pb.DatabaseService, databaseHandlers(node, leaders));
  return { close: () => leaders.close() };
}

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;

/** Runs `local`; when this node is not the leader, forwards `call` to the leader instead. */
function leaderCall<Req, Res>(
  node: DatabaseNode,
  leaders: LeaderClients,
  method: keyof pb.DatabaseClient & string,
  local: (req: Req) => Promise<Res>,
): Unary<Req, Res> {
  return (call, callback) => {
    const forwarded = call.metadata.get(FORWARDED).length > 0;
    local(call.request)
      .then((res) => callback(null, res))
      .catch(async (e: unknown) => {
        const err = asDatabaseError(e);
        if (err.code === "not-leader" && err.leader && !forwarded && err.leader.id !== node.id) {
          try {
            const md = new grpc.Metadata();
            md.set(FORWARDED, node.id);
            callback(null, await leaders.call<Req, Res>(err.leader.address, method, call.request, md, call.getDeadline()));
          } catch (fe) {
            callback(fe as grpc.ServiceError);
          }
          return;
        }
        callback(toStatus(err));
      });
  };
}

function databaseHandlers(node: DatabaseNode, leaders: LeaderClients): pb.DatabaseServer {
  return {
    exec: leaderCall<pb.ExecRequest, pb.ExecReply>(node, leaders, "exec", (req) => execOne(node, req)),

    execMany: leaderCall<pb.ExecManyRequest, pb.ExecManyReply>(node, leaders, "execMany", async (req) => {
      // A follower forwards the whole batch; the leader proposes every write at once,
      // so they share Readys and fsyncs, and answers each on its own.
      if (!node.isLeader()) throw DatabaseError.notLeader(node.leader());
      const outcomes = await Promise.all(
        req.requests.map((r) =>
          execOne(node, r).then(
            (reply): pb.ExecOutcome => ({ reply, errorCode: 0, errorMessage: "", leader: "" }),
            (e: unknown): pb.ExecOutcome => {
              const err = asDatabaseError(e);
              return { errorCode: err.grpcCode, errorMessage: err.message, leader: err.leader ? `${err.leader.id}=${err.leader.address}` : "" };
            },
          ),
        ),
      );
      return { outcomes };
    }),

    migrate: leaderCall<pb.MigrateRequest, pb.MigrateReply>(node, leaders, "migrate", async (req) => {
      const from = node.stateMachine.schemaVersion();
      const known = Math.max(0, ...req.migrations.map((m) => m.version));
      if (from > known) {
        throw new DatabaseError("failed-precondition", `the database schema is at version ${from}, newer than this caller knows (${known})`);
      }
      let index = node.stateMachine.appliedIndex();
      for (const m of [...req.migrations].sort((a, b) => a.version - b.version)) {
        if (m.version <= node.stateMachine.schemaVersion()) continue;
        const cmd: Migrate = {
          kind: "migrate",
          requestId: migrationRequestId(m.version),
          version: m.version,
          statements: m.statements.map((sql) => ({ sql, params: [] })),
        };
        const out = await node.exec(cmd);
        unwrap(out.result);
        index = out.index;
      }
      return { fromVersion: from, toVersion: node.stateMachine.schemaVersion(), appliedIndex: index };
    }),

    // A node without a replica (a spare, or one not yet in the configuration) would wait
    // for a log it never receives: its reads go to the leader instead.
    query: leaderCall<pb.QueryRequest, pb.QueryReply>(node, leaders, "query", async (req) => {
      const role = node.roleOf(node.id);
      if ((role === "spare" || role === undefined) && !node.isLeader()) throw DatabaseError.notLeader(node.leader());
      const r = await node.query(req.sql, req.params.map(valueToParam), {
        linearizable: req.consistency !== pb.Consistency.STALE,
        minIndex: req.minIndex,
      });
      return { columns: r.columns, rows: r.rows.map((row) => ({ values: row.map(paramToValue) })), appliedIndex: r.appliedIndex };
    }),

    watch: (call) => {
      let stop: (() => void) | undefined;
      try {
        stop = node.onChange(call.request.fromIndex, (e) => call.write({ index: e.index, requestId: e.requestId, tables: e.tables }));
      } catch (e) {
        call.emit("error", toStatus(asDatabaseError(e)));
        return;
      }
      call.on("cancelled", () => stop?.());
      call.on("close", () => stop?.());
      // Headers now: the client knows it is subscribed (and caches can trust the stream).
      call.sendMetadata(new grpc.Metadata());
    },

    status: (_call, callback) => {
      const s = node.status();
      const nodes = Object.entries(s.config.members).map(([id, m]) => ({
        id,
        address: id === node.id ? node.address : m.address,
        role: roleToProto(m.role),
        matchIndex: s.progress[id]?.match ?? 0,
        online: id === node.id || (s.role === "leader" ? (s.progress[id]?.recentActive ?? false) : id === s.leader),
      }));
      callback(null, {
        nodeId: node.id,
        term: s.term,
        leader: s.leader,
        appliedIndex: s.appliedIndex,
        commitIndex: s.commit,
        lastIndex: s.lastIndex,
        nodes,
      });
    },

    addNode: leaderCall<pb.AddNodeRequest, pb.ConfigReply>(node, leaders, "addNode", async (req) => {
      if (!req.id || !req.address) throw DatabaseError.invalid("id and address are required");
      if (node.roleOf(req.id)) throw DatabaseError.invalid(`node "${req.id}" is already a member`);
      const role = protoRole(req.role);
      // A new node always enters without a vote; it becomes a voter once it holds the log.
      const index = await node.changeConfig({ op: "set-role", id: req.id, role: role === "voter" ? "standby" : role, address: req.address });
      if (role !== "voter") return { index };
      return { index: await node.changeConfig({ op: "set-role", id: req.id, role, address: req.address }) };
    }),

    assignRole: leaderCall<pb.AssignRoleRequest, pb.ConfigReply>(node, leaders, "assignRole", async (req) => {
      if (!node.roleOf(req.id)) throw new DatabaseError("not-found", `unknown node "${req.id}"`);
      const cc: ConfChange = { op: "set-role", id: req.id, role: protoRole(req.role), address: "" };
      if (req.id === node.id && cc.role !== "voter") await node.transferLeadership();
      return { index: await node.changeConfig(cc) };
    }),

    removeNode: leaderCall<pb.RemoveNodeRequest, pb.ConfigReply>(node, leaders, "removeNode", async (req) => {
      if (!node.roleOf(req.id)) throw new DatabaseError("not-found", `unknown node "${req.id}"`);
      // The leader hands over before removing itself; the caller's retry reaches the new leader.
      if (req.id === node.id) {
        await node.transferLeadership();
        throw DatabaseError.notLeader(node.leader());
      }
      return { index: await node.changeConfig({ op: "remove", id: req.id }) };
    }),

    transferLeadership: leaderCall<pb.TransferLeadershipRequest, pb.TransferLeadershipReply>(
      node,
      leaders,
      "transferLeadership",
      async (req) => {
        if (req.to !== undefined && !node.roleOf(req.to)) throw new DatabaseError("not-found", `unknown node "${req.to}"`);
        return { leader: await node.transferLeadership(req.to) };
      },
    ),

    lookup: leaderCall<pb.LookupRequest, pb.LookupReply>(node, leaders, "lookup", async (req) => {
      // Ask the leader, after a read barrier, so "not committed" is not just "not applied here yet".
      if (!node.isLeader()) throw DatabaseError.notLeader(node.leader());
      await node.readBarrier();
      const rec = node.lookup(req.requestId);
      return { committed: rec !== undefined, index: rec?.appliedIndex ?? 0 };
    }),
  };
}

async function execOne(node: DatabaseNode, req: pb.ExecRequest): Promise<pb.ExecReply> {
  if (!req.requestId) throw DatabaseError.invalid("request_id is required (it makes retries safe)");
  const { index, result } = await node.exec(batchOf(req));
  const ok = unwrap(result);
  return {
    appliedIndex: index,
    results: ok.map((r) => ({ changes: r.changes, lastInsertRowid: Number(r.lastInsertRowid) })),
  };
}

/** The state machine's batch for an ExecRequest (as the service applies it). */
export function batchOf(req: pb.ExecRequest): Batch {
  return {
    kind: "batch",
    requestId: req.requestId,
    statements: req.statements.map((s) => ({
      sql: s.sql,
      params: s.params.map(valueToParam),
      ...(s.expectChanges !== undefined ? { expectChanges: s.expectChanges } : {}),
    })),
    preconditions: req.preconditions.map((p) => ({
      sql: p.sql,
      params: p.params.map(valueToParam),
      ...(p.expectRows !== undefined ? { expectRows: p.expectRows } : {}),
      ...(p.expectValue !== undefined ? { expectValue: valueToParam(p.expectValue) } : {}),
      ...(p.message ? { message: p.message } : {}),
    })),
  };
}

function protoRole(r: Role): CoreRole {
  try {
    return roleFromProto(r);
  } catch {
    throw DatabaseError.invalid(`unknown role ${String(r)}`);
  }
}

function unwrap(result: ApplyResult): Extract<ApplyResult, { ok: true }>["results"] {
  if (result.ok) return result.results;
  const { code, message } = result.error;
  if (code === "precondition-failed" || code === "schema-version") throw new DatabaseError("failed-precondition", message);
  throw DatabaseError.invalid(message);
}

function asDatabaseError(e: unknown): DatabaseError {
  if (e instanceof DatabaseError) return e;
  if (e instanceof InvalidCommandError) return DatabaseError.invalid(e.message);
  return DatabaseError.internal((e as Error)?.message ?? String(e));
}

function toStatus(e: DatabaseError): Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  if (e.leader) metadata.set("shoal-leader", `${e.leader.id}=${e.leader.address}`);
  return { code: e.grpcCode, details: e.message, metadata };
}
