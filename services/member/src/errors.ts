// Errors the agent raises on purpose, each with the gRPC status it maps to
// (proto/member.proto lists them). Anything else is INTERNAL.
export type AgentErrorKind =
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "invalid-argument"
  | "data-loss"
  | "unavailable"
  | "permission-denied";

export class AgentError extends Error {
  constructor(
    readonly kind: AgentErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "AgentError";
  }
}

export const notFound = (msg: string) => new AgentError("not-found", msg);
export const alreadyExists = (msg: string) => new AgentError("already-exists", msg);
export const preconditionFailed = (msg: string) => new AgentError("failed-precondition", msg);
export const invalidArgument = (msg: string) => new AgentError("invalid-argument", msg);
export const dataLoss = (msg: string) => new AgentError("data-loss", msg);
export const unavailable = (msg: string) => new AgentError("unavailable", msg);
export const permissionDenied = (msg: string) => new AgentError("permission-denied", msg);

/** LXD's instance name rule: a host name label (1-63 of a-z A-Z 0-9 -, no leading digit or hyphen, no trailing hyphen). */
export function checkInstanceName(name: string): void {
  if (!/^[A-Za-z][A-Za-z0-9-]{0,62}$/.test(name) || name.endsWith("-")) {
    throw invalidArgument(`Invalid instance name "${name}": a name is 1-63 letters, digits or hyphens, starts with a letter and does not end with a hyphen`);
  }
}

export function checkFingerprint(fp: string): void {
  if (!/^[0-9a-f]{64}$/.test(fp)) throw invalidArgument(`Invalid image fingerprint "${fp}": expected 64 lowercase hex digits (sha256)`);
}
