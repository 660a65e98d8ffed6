// LXD response envelopes, as the real client expects them (see
// reference/lxd-5.0.2/README.md "Errors" and remote-add.md):
//   sync:  HTTP 200 (or 201), {type:"sync", status:"Success", status_code:200, ..., metadata}
//   error: HTTP = error_code, {type:"error", status:"", status_code:0, operation:"",
//          error_code, error, metadata:null} plus `X-Content-Type-Options: nosniff`.
import type { FastifyReply } from "fastify";

export interface SyncEnvelope<T> {
  type: "sync";
  status: "Success";
  status_code: 200;
  operation: "";
  error_code: 0;
  error: "";
  metadata: T;
}

export interface ErrorEnvelope {
  type: "error";
  status: "";
  status_code: 0;
  operation: "";
  error_code: number;
  error: string;
  metadata: null;
}

/** An error the client sees as an LXD error response with this HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }

  static badRequest(message: string): ApiError {
    return new ApiError(400, message);
  }
  static forbidden(): ApiError {
    return new ApiError(403, "not authorized");
  }
  static notFound(message = "not found"): ApiError {
    return new ApiError(404, message);
  }
}

export function syncEnvelope<T>(metadata: T): SyncEnvelope<T> {
  return { type: "sync", status: "Success", status_code: 200, operation: "", error_code: 0, error: "", metadata };
}

export function errorEnvelope(status: number, message: string): ErrorEnvelope {
  return { type: "error", status: "", status_code: 0, operation: "", error_code: status, error: message, metadata: null };
}

/** Sends a sync response; `etag` (unquoted) becomes a quoted ETag header, `location` a Location header. */
export function sendSync<T>(reply: FastifyReply, metadata: T, opts: { status?: 200 | 201; etag?: string; location?: string } = {}): FastifyReply {
  if (opts.etag) reply.header("etag", `"${opts.etag}"`);
  if (opts.location) reply.header("location", opts.location);
  return reply.code(opts.status ?? 200).type("application/json").send(syncEnvelope(metadata));
}

export function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).header("x-content-type-options", "nosniff").type("application/json").send(errorEnvelope(status, message));
}
