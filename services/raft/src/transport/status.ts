// gRPC status errors, for handlers to throw and callers to inspect.
import * as grpc from "@grpc/grpc-js";

export type StatusError = Error & { code: grpc.status; details: string };

export function statusError(code: grpc.status, details: string): StatusError {
  return Object.assign(new Error(details), { code, details });
}

export function isStatusError(err: unknown): err is StatusError {
  return err instanceof Error && typeof (err as Partial<StatusError>).code === "number";
}

/** Any thrown value as a status error for a handler's callback (unknown errors become INTERNAL). */
export function toStatusError(err: unknown): StatusError {
  if (isStatusError(err)) return err;
  return statusError(grpc.status.INTERNAL, err instanceof Error ? err.message : String(err));
}
