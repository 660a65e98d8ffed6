// One gateway's side of the cluster event stream: websocket listeners on
// `/1.0/events` (LXD's filters `?type=` and `?project=` / `?all-projects=true`),
// fed from the replicated `events` table. While anyone listens, the hub reads the
// rows after its cursor every `pollMs` (a linearizable query), so an event written
// through any gateway reaches the listeners of every gateway, in commit order.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { WebSocketServer, type WebSocket } from "ws";
import { errorEnvelope } from "../response.ts";
import type { Database } from "../schema.ts";
import { isTrusted, peerCertificate } from "../trust.ts";
import { EVENT_TYPES, type EventType } from "./events.ts";

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
  private closed = false;

  constructor(
    private readonly db: Database,
    private readonly pollMs = 100,
  ) {}

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
      ws.on("close", () => this.listeners.delete(l));
      ws.on("error", () => this.listeners.delete(l));
      // Listeners only receive; whatever they send is ignored (as LXD does).
      ws.on("message", () => undefined);
      this.start();
    });
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

  private async poll(): Promise<void> {
    if (this.polling) return;
    if (this.listeners.size === 0) return this.stop();
    this.polling = true;
    try {
      const from = await this.currentCursor();
      const r = await this.db.query("SELECT seq, type, project, body FROM events WHERE seq > ? ORDER BY seq LIMIT 1000", [from]);
      for (const [seq, type, project, body] of r.rows) {
        const n = Number(seq);
        for (const l of this.listeners) {
          if (n <= l.after || !l.types.has(String(type) as EventType)) continue;
          if (l.project !== undefined && project !== "" && project !== l.project) continue;
          if (l.ws.readyState === l.ws.OPEN) l.ws.send(String(body));
        }
        this.cursor = n;
      }
    } catch {
      // The database is briefly unavailable (e.g. a leader change): try again next tick.
    } finally {
      this.polling = false;
    }
  }

  /** How many websocket listeners this gateway serves. */
  get size(): number {
    return this.listeners.size;
  }

  close(): void {
    this.closed = true;
    this.stop();
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
