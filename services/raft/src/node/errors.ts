// Errors a database caller can act on, each mapped to one gRPC status code.

import * as grpc from "@grpc/grpc-js";
import type { NodeId } from "../core/types.ts";

export type DatabaseErrorCode =
  | "not-leader"
  | "unavailable"
  | "timeout"
  | "invalid-argument"
  | "failed-precondition"
  | "not-found"
  | "out-of-range"
  | "internal";

const grpcCodes: Record<DatabaseErrorCode, grpc.status> = {
  "not-leader": grpc.status.UNAVAILABLE,
  unavailable: grpc.status.UNAVAILABLE,
  timeout: grpc.status.DEADLINE_EXCEEDED,
  "invalid-argument": grpc.status.INVALID_ARGUMENT,
  "failed-precondition": grpc.status.FAILED_PRECONDITION,
  "not-found": grpc.status.NOT_FOUND,
  "out-of-range": grpc.status.OUT_OF_RANGE,
  internal: grpc.status.INTERNAL,
};

export class DatabaseError extends Error {
  constructor(
    readonly code: DatabaseErrorCode,
    message: string,
    /** not-leader: who the node believes leads, so the caller can go there. */
    readonly leader?: { id: NodeId; address: string },
  ) {
    super(message);
  }

  get grpcCode(): grpc.status {
    return grpcCodes[this.code];
  }

  static notLeader(leader: { id: NodeId; address: string } | undefined): DatabaseError {
    return new DatabaseError("not-leader", leader ? `not the leader; the leader is ${leader.id}` : "no leader is known at the moment", leader);
  }
  static unavailable(message: string): DatabaseError {
    return new DatabaseError("unavailable", message);
  }
  static timeout(message: string): DatabaseError {
    return new DatabaseError("timeout", message);
  }
  static invalid(message: string): DatabaseError {
    return new DatabaseError("invalid-argument", message);
  }
  static internal(message: string): DatabaseError {
    return new DatabaseError("internal", message);
  }
}
