// The gateway's side of the member agents (services/member): one MemberClient per
// member address (the agent shares the member's gRPC server), agent errors as LXD
// errors, and the driver the members run (GET /1.0 `environment.driver`).
import * as grpc from "@grpc/grpc-js";
import { MemberClient } from "../../../member/src/agent/client.ts";
import type { TlsConfig } from "../../../raft/src/transport/credentials.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";

/** Deadline of the state queries behind listings: an unreachable member must not hang `lxc list`. */
export const STATE_TIMEOUT_MS = 3_000;

export class AgentClients {
  private readonly clients = new Map<string, MemberClient>();

  constructor(private readonly tls: TlsConfig) {}

  /** The agent at a member's address ("host:port"); `quick`: calls with a short deadline (state, listings). */
  get(address: string, quick = false): MemberClient {
    const key = `${quick ? "q" : "w"} ${address}`;
    let c = this.clients.get(key);
    if (!c) {
      c = new MemberClient(address, this.tls, quick ? STATE_TIMEOUT_MS : undefined);
      this.clients.set(key, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** The agent's sentence of a gRPC error (its `details`), else the error's message. */
export function agentMessage(e: unknown): string {
  const se = e as Partial<grpc.ServiceError>;
  if (typeof se.code === "number" && typeof se.details === "string" && se.details) return se.details;
  return e instanceof Error ? e.message : String(e);
}

/** An agent error as the LXD error the client should see (HTTP status by gRPC code). */
export function agentError(e: unknown, member: string): ApiError {
  const code = (e as Partial<grpc.ServiceError>).code;
  const msg = agentMessage(e);
  switch (code) {
    case grpc.status.NOT_FOUND:
      return new ApiError(404, msg);
    case grpc.status.ALREADY_EXISTS:
      return new ApiError(409, msg);
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.FAILED_PRECONDITION:
      return new ApiError(400, msg);
    case grpc.status.PERMISSION_DENIED:
      return new ApiError(403, msg);
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
      return new ApiError(503, `Cluster member "${member}" is unreachable: ${msg}`);
    default:
      return new ApiError(500, msg);
  }
}

/**
 * `environment.driver`: the drivers the members' agents run, as LXD joins several
 * ("lxc | qemu"); "" while no member has said. A simulated member says `simulated`.
 */
export async function clusterDrivers(db: Pick<Database, "query">): Promise<string> {
  const r = await db.query("SELECT DISTINCT driver FROM members WHERE driver != '' ORDER BY driver", []);
  return r.rows.map((row) => String(row[0])).join(" | ");
}
