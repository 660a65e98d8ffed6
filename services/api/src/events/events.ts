// LXD events (`/1.0/events`): what they look like and how a change publishes one.
// An event is written to the replicated `events` table in the same batch as the
// change it reports, so it commits exactly when the change does and every gateway
// of the cluster (see hub.ts) delivers it to its listeners.
import type { FastifyRequest } from "fastify";
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";

export const EVENT_TYPES = ["lifecycle", "operation", "logging"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** LXD's api.Event: `location` and `project` are omitted when empty. */
export interface LxdEvent {
  type: EventType;
  timestamp: string;
  metadata: unknown;
  location?: string;
  project?: string;
}

/** Events kept in the table (older ones are pruned by each writer). */
export const EVENTS_KEPT = 10_000;

/** The statements that publish `ev` (append them to the batch making the change). */
export function publishStatements(ev: LxdEvent): ExecStatement[] {
  return [
    {
      // seq is computed inside the replicated write: every replica gets the same number.
      sql: "INSERT INTO events (seq, type, project, body) VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM events), ?, ?, ?)",
      params: [ev.type, ev.project ?? "", JSON.stringify(ev)],
    },
    { sql: "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?", params: [EVENTS_KEPT] },
  ];
}

export interface Requestor {
  username: string;
  protocol: "unix" | "tls";
  address: string;
}

/** Who made a request, as LXD reports it in lifecycle events. */
export function requestor(req: FastifyRequest): Requestor {
  if (!req.clientCertificate && !(req.raw.socket as { encrypted?: boolean }).encrypted) {
    return { username: "root", protocol: "unix", address: "@" };
  }
  const s = req.raw.socket;
  const host = s.remoteAddress?.includes(":") ? `[${s.remoteAddress}]` : (s.remoteAddress ?? "");
  return { username: req.clientCertificate?.fingerprint ?? "", protocol: "tls", address: `${host}:${s.remotePort ?? 0}` };
}

/** A lifecycle event (LXD's lifecycle.*.Event): action, source, requestor, optional context. */
export function lifecycleEvent(opts: {
  action: string;
  source: string;
  location: string;
  requestor?: Requestor;
  context?: Record<string, unknown>;
  project?: string;
}): LxdEvent {
  const metadata: Record<string, unknown> = { action: opts.action, source: opts.source };
  if (opts.context) metadata.context = opts.context;
  if (opts.requestor) metadata.requestor = opts.requestor;
  const ev: LxdEvent = { type: "lifecycle", timestamp: new Date().toISOString(), metadata, location: opts.location };
  if (opts.project) ev.project = opts.project;
  return ev;
}

/** The statements publishing an instance's lifecycle event (LXD's source: /1.0/instances/NAME, in its project). */
export function instanceEvent(
  action: string,
  i: { project: string; name: string },
  location: string,
  opts: { requestor?: Requestor; context?: Record<string, unknown> } = {},
): ExecStatement[] {
  return publishStatements(lifecycleEvent({ action, source: `/1.0/instances/${encodeURIComponent(i.name)}`, location, project: i.project, ...opts }));
}
