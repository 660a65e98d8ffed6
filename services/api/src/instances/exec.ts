// `lxc exec`: LXD's exec protocol bridged to the owning member's agent (the Exec
// bidirectional gRPC stream, MemberClient.exec). POST /1.0/instances/<name>/exec
// answers with a `websocket` operation whose metadata names one secret per
// websocket: interactive → "0" (the terminal, both ways) and "control";
// non-interactive → "0" (stdin), "1" (stdout), "2" (stderr) and "control". The
// client connects each with GET /1.0/operations/<id>/websocket?secret=S (the secret
// is the credential, as in LXD). Once all are connected the command starts; control
// messages carry window resizes and signals; when the command exits the output
// websockets close and the operation ends with metadata.return = the exit code.
//
// The websockets are served by the gateway that created the operation (the one the
// client talks to); sessions live in this process.
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";

const wss = new WebSocketServer({ noServer: true });

/** How long the client has to connect every websocket before the exec is abandoned. */
const CONNECT_TIMEOUT_MS = 30_000;

/** A connected websocket's incoming messages, kept from the moment it connects until a reader takes them. */
class Inbox {
  private queue: Buffer[] = [];
  private closed = false;
  private reader?: { message(b: Buffer): void; close(): void };

  push(b: Buffer): void {
    if (this.reader) this.reader.message(b);
    else this.queue.push(b);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader?.close();
  }
  read(message: (b: Buffer) => void, close: () => void = () => undefined): void {
    this.reader = { message, close };
    for (const b of this.queue.splice(0)) message(b);
    if (this.closed) close();
  }
}

export interface ExecSession {
  id: string;
  /** Incoming messages per fd (buffered from connection on: a fast client sends before the command runs). */
  inbox(fd: string): Inbox;
  /** fd name ("0", "1", "2", "control") → secret. */
  secrets: Record<string, string>;
  sockets: Map<string, WebSocket>;
  /** Resolves once every websocket is connected. */
  connected: Promise<void>;
}

const sessions = new Map<string, ExecSession & { onConnect(): void }>();

function secret(): string {
  return randomBytes(32).toString("hex");
}

/** A new session for operation `id`; drop it with endSession when the exec is over. */
export function newSession(id: string, interactive: boolean): ExecSession {
  const fds = interactive ? ["0", "control"] : ["0", "1", "2", "control"];
  const secrets = Object.fromEntries(fds.map((fd) => [fd, secret()]));
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const connected = new Promise<void>((a, b) => ((resolve = a), (reject = b)));
  connected.catch(() => undefined);
  const timer = setTimeout(() => reject(new Error("Timed out waiting for the exec websockets to connect")), CONNECT_TIMEOUT_MS);
  const inboxes = new Map(fds.map((fd) => [fd, new Inbox()]));
  const s = {
    id,
    secrets,
    inbox: (fd: string) => inboxes.get(fd)!,
    sockets: new Map<string, WebSocket>(),
    connected,
    onConnect() {
      if (s.sockets.size === fds.length) {
        clearTimeout(timer);
        resolve();
      }
    },
  };
  sessions.set(id, s);
  return s;
}

export function endSession(s: ExecSession): void {
  sessions.delete(s.id);
  for (const ws of s.sockets.values()) if (ws.readyState === ws.OPEN) ws.close(1000);
}

const WS_PATH = /^\/1\.0\/operations\/([0-9a-f-]{36})\/websocket$/;

/** Whether an upgrade request is for an operation's websocket (else it is /1.0/events or unknown). */
export function isOperationWebsocket(req: IncomingMessage): boolean {
  return WS_PATH.test(new URL(req.url ?? "/", "http://gateway").pathname);
}

/** Connects a websocket to its exec session by secret; 403 for a wrong or used secret. */
export function handleOperationWebsocket(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const url = new URL(req.url ?? "/", "http://gateway");
  const id = WS_PATH.exec(url.pathname)?.[1] ?? "";
  const s = sessions.get(id);
  const given = url.searchParams.get("secret") ?? "";
  const fd = s ? Object.keys(s.secrets).find((k) => s.secrets[k] === given) : undefined;
  if (!s || fd === undefined || s.sockets.has(fd)) {
    const body = JSON.stringify({ type: "error", status: "", status_code: 0, operation: "", error_code: 403, error: "not authorized", metadata: null });
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    s.sockets.set(fd, ws);
    const inbox = s.inbox(fd);
    ws.on("message", (data) => inbox.push(bytesOf(data)));
    ws.on("close", () => inbox.close());
    ws.on("error", () => inbox.close());
    s.onConnect();
  });
}

/** The bytes of a websocket message. */
export function bytesOf(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
}

/** Sends and resolves once written (or the socket is gone). */
export function send(ws: WebSocket | undefined, data: Buffer): Promise<void> {
  if (!ws || ws.readyState !== ws.OPEN) return Promise.resolve();
  return new Promise((resolve) => ws.send(data, { binary: true }, () => resolve()));
}
