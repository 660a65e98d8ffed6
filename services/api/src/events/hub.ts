// One gateway's side of the cluster event stream: websocket listeners on
// `/1.0/events` (LXD's filters `?type=` and `?project=` / `?all-projects=true`),
// fed from three sources:
//   - the replicated `events` table (lifecycle and operation events, and logging
//     events that must commit with a change): while anyone listens, the hub reads the
//     rows after its cursor every `pollMs` (a linearizable query) and at once when the
//     database's Watch stream reports a change to it (pollNow), so an event written
//     through any gateway or member reaches the listeners of every gateway, in commit order;
//   - the members' own `logging` events, streamed from each member while a listener
//     wants them (member-streams.ts), located at the member;
//   - this gateway's own `logging` events (log()), located at the gateway, also relayed
//     through a member to the other gateways' listeners (gateway-relay.ts).
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { WebSocketServer, type WebSocket } from "ws";
import { z } from "zod";
import { errorEnvelope } from "../response.ts";
import type { Database } from "../schema.ts";
import { isTrusted, peerCertificate } from "../trust.ts";
import { EVENT_TYPES, type EventType, type LxdEvent } from "./events.ts";
import type { LogLevel } from "./member-events.ts";
import type { GatewayLogRelay } from "./gateway-relay.ts";
import { MemberEventStreams, type MemberStreamsOptions } from "./member-streams.ts";

/** A member's event as it arrives (an edge: anything else is dropped). */
const memberEvent = z.object({
  type: z.enum(EVENT_TYPES),
  timestamp: z.string(),
  metadata: z.unknown(),
  location: z.string().optional(),
  project: z.string().optional(),
});

export interface EventHubOptions {
  /** How often the events table is read while anyone listens. */
  pollMs?: number;
  /** This gateway's server name: the `location` of its own logging events. */
  location?: string;
  /** The members and how to open their event streams (none: no member events). */
  members?: Pick<MemberStreamsOptions, "members" | "open">;
  /** Where this gateway's own logging events go for the other gateways' listeners (gateway-relay.ts). */
  relay?: GatewayLogRelay;
}

interface Listener {
  ws: WebSocket;
  types: Set<EventType>;
  /** undefined = all projects. */
  project: string | undefined;
  /** Only events after this seq (the cursor when it subscribed). */
  after: number;
}

export class EventHub {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly listeners = new Set<Listener>();
  private cursor: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private polling = false;
  /** A change arrived during a poll: poll once more after it. */
  private pollAgain = false;
  private closed = false;
  private readonly pollMs: number;
  private readonly memberStreams: MemberEventStreams | undefined;

  constructor(
    private readonly db: Database,
    private readonly opts: EventHubOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 100;
    const members = opts.members;
    this.memberStreams = members && new MemberEventStreams({ ...members, types: ["logging"], deliver: (type, body) => this.deliverMemberEvent(type, body) });
  }

  /** Handles an HTTP upgrade; `trustedSocket` is true on the unix socket. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, trustedSocket: boolean): void {
    void this.upgrade(req, socket, head, trustedSocket).catch(() => socket.destroy());
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, trustedSocket: boolean): Promise<void> {
    const url = new URL(req.url ?? "/", "http://gateway");
    if (url.pathname !== "/1.0/events") return refuse(socket, 404, "not found");
    let trusted = trustedSocket;
    if (!trusted) {
      const cert = peerCertificate(socket as TLSSocket);
      if (cert) trusted = await isTrusted(this.db, cert.fingerprint);
    }
    if (!trusted) return refuse(socket, 403, "not authorized");
    const typeParam = url.searchParams.get("type") ?? "";
    const types = new Set<EventType>();
    for (const t of typeParam.split(",").map((s) => s.trim()).filter(Boolean)) {
      if (!(EVENT_TYPES as readonly string[]).includes(t)) return refuse(socket, 400, `'${t}' isn't a supported event type`);
      types.add(t as EventType);
    }
    if (types.size === 0) for (const t of EVENT_TYPES) types.add(t);
    const allProjects = ["true", "1"].includes(url.searchParams.get("all-projects") ?? "");
    const project = allProjects ? undefined : url.searchParams.get("project") || "default";

    // The listener gets what commits after it connected (not what the hub has yet to deliver).
    const after = await this.latestSeq();
    if (this.cursor === undefined) this.cursor = after;
    if (this.closed) return refuse(socket, 503, "the gateway is shutting down");
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const l: Listener = { ws, types, project, after };
      this.listeners.add(l);
      const gone = () => {
        this.listeners.delete(l);
        this.memberStreams?.want(this.wants("logging"));
      };
      ws.on("close", gone);
      ws.on("error", gone);
      // Listeners only receive; whatever they send is ignored (as LXD does).
      ws.on("message", () => undefined);
      this.start();
      this.memberStreams?.want(this.wants("logging"));
      const remote = req.socket.remoteAddress ? `${req.socket.remoteAddress}:${req.socket.remotePort ?? 0}` : "@";
      this.log("debug", "Event listener server handler started", { remote });
    });
  }

  /** Whether any listener of this gateway wants events of `type`. */
  wants(type: EventType): boolean {
    for (const l of this.listeners) if (l.types.has(type)) return true;
    return false;
  }

  /** A `logging` event of this gateway, for its own listeners and the other gateways' (nothing is built when none wants it). */
  log(level: LogLevel, message: string, context: Record<string, string> = {}): void {
    const local = this.wants("logging");
    const remote = this.opts.relay?.wanted ?? false;
    if (!local && !remote) return;
    const ev: LxdEvent = { type: "logging", timestamp: new Date().toISOString(), metadata: { message, level, context } };
    if (this.opts.location) ev.location = this.opts.location;
    const body = JSON.stringify(ev);
    if (local) this.send("logging", "", body);
    if (remote) this.opts.relay!.push(body);
  }

  /** Sends `body` to the listeners that want `type` and `project`, except those whose cursor is past `seq`. */
  private send(type: string, project: string, body: string, seq?: number): void {
    for (const l of this.listeners) {
      if (seq !== undefined && seq <= l.after) continue;
      if (!l.types.has(type as EventType)) continue;
      if (l.project !== undefined && project !== "" && project !== l.project) continue;
      if (l.ws.readyState === l.ws.OPEN) l.ws.send(body);
    }
  }

  private deliverMemberEvent(type: string, body: string): void {
    let parsed: z.infer<typeof memberEvent>;
    try {
      parsed = memberEvent.parse(JSON.parse(body));
    } catch {
      return;
    }
    if (parsed.type !== type) return;
    this.send(type, parsed.project ?? "", body);
  }

  private async latestSeq(): Promise<number> {
    const r = await this.db.query("SELECT coalesce(max(seq), 0) FROM events");
    return Number(r.rows[0]?.[0] ?? 0);
  }

  private async currentCursor(): Promise<number> {
    if (this.cursor === undefined) {
      const seq = await this.latestSeq();
      if (this.cursor === undefined) this.cursor = seq;
    }
    return this.cursor;
  }

  private start(): void {
    if (!this.timer) this.timer = setInterval(() => void this.poll(), this.pollMs);
    if (!this.pinger) this.pinger = setInterval(() => this.listeners.forEach((l) => l.ws.ping()), 30_000);
  }

  private stop(): void {
    clearInterval(this.timer);
    clearInterval(this.pinger);
    this.timer = this.pinger = undefined;
    this.cursor = undefined; // re-read when someone listens again
  }

  /**
   * Reads the new rows now rather than at the next tick: the database's Watch stream
   * reported a change to `events` (an operation that just finished reaches `lxc` at once).
   */
  pollNow(): void {
    if (this.listeners.size === 0) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    void this.poll();
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    if (this.listeners.size === 0) return this.stop();
    this.polling = true;
    this.pollAgain = false;
    try {
      const from = await this.currentCursor();
      const r = await this.db.query("SELECT seq, type, project, body FROM events WHERE seq > ? ORDER BY seq LIMIT 1000", [from]);
      for (const [seq, type, project, body] of r.rows) {
        const n = Number(seq);
        this.send(String(type), String(project ?? ""), String(body), n);
        this.cursor = n;
      }
    } catch {
      // The database is briefly unavailable (e.g. a leader change): try again next tick.
    } finally {
      this.polling = false;
      if (this.pollAgain) this.pollNow();
    }
  }

  /** How many websocket listeners this gateway serves. */
  get size(): number {
    return this.listeners.size;
  }

  close(): void {
    this.closed = true;
    this.stop();
    this.memberStreams?.close();
    this.opts.relay?.close();
    for (const l of this.listeners) l.ws.terminate();
    this.listeners.clear();
    this.wss.close();
  }
}

function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify(errorEnvelope(status, message));
  const reason = { 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 503: "Service Unavailable" }[status] ?? "Error";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
