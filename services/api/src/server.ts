// The gateway's listeners: HTTPS with the cluster certificate (any client
// certificate is requested; trust is by fingerprint in the replicated
// `certificates` table) and a unix socket `<dir>/unix.socket` with full trust, so
// that `LXD_DIR=<dir> lxc …` works locally. Both serve the same routes.
import { randomUUID } from "node:crypto";
import { constants, X509Certificate } from "node:crypto";
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import * as grpc from "@grpc/grpc-js";
import { DatabaseClientError } from "../../raft/src/node/database-client.ts";
import { fingerprint } from "../../raft/src/transport/certificate.ts";
import { ApiError, sendError } from "./response.ts";
import { GatewayLogRelay } from "./events/gateway-relay.ts";
import { EventHub } from "./events/hub.ts";
import { requestor } from "./events/events.ts";
import { listMembers } from "./cluster/members.ts";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { handleOperationWebsocket, isOperationWebsocket } from "./instances/exec.ts";
import { LiveTls } from "../../raft/src/transport/live-tls.ts";
import { watchClusterCertificate } from "./cluster/certificate-rotation.ts";
import { MemberClients } from "./cluster/member-service.ts";
import { ReadCache, type WatchSource } from "./cache/read-cache.ts";
import { tablesWrittenBy } from "./cache/written-tables.ts";
import { certificateRoutes } from "./routes/certificates.ts";
import { clusterGroupRoutes } from "./routes/cluster-groups.ts";
import { clusterJoinRoutes } from "./routes/cluster-join.ts";
import { clusterRoutes } from "./routes/cluster.ts";
import { clusterEvacuationRoutes } from "./routes/cluster-evacuation.ts";
import { containersAsInstances } from "./routes/containers.ts";
import { imageRoutes } from "./routes/images.ts";
import { instanceRoutes } from "./routes/instances.ts";
import { instanceExecRoutes } from "./routes/instance-exec.ts";
import { instanceFileRoutes } from "./routes/instance-files.ts";
import { scriptletRoutes } from "./routes/scriptlet.ts";
import { networkRoutes } from "./routes/networks.ts";
import { operationRoutes } from "./routes/operations.ts";
import { profileRoutes } from "./routes/profiles.ts";
import { projectRoutes } from "./routes/projects.ts";
import { serverRoutes } from "./routes/server.ts";
import { storagePoolRoutes } from "./routes/storage-pools.ts";
import { withExec, type Database } from "./schema.ts";
import { peerCertificate, TrustCache, type ParsedCertificate } from "./trust.ts";

export interface GatewayOptions {
  db: Database;
  /** Directory for the unix socket (`<dir>/unix.socket`). */
  dir: string;
  /** "host:port" for HTTPS; port 0 picks a free one. */
  listen: string;
  /** The cluster certificate and key (PEM); must carry an IP SAN for the listen address. */
  cert: string;
  key: string;
  /** `environment.server_name`. */
  serverName: string;
  /** Request body limit in bytes (413 above it). */
  bodyLimit?: number;
  /** The TLS the database client uses, to rotate together (default: a new one from cert/key). */
  tls?: LiveTls;
  /** The certificate files, rewritten when the cluster certificate is rotated. */
  certPath?: string;
  keyPath?: string;
}

/** What route handlers know about the gateway. */
export interface GatewayContext {
  db: Database;
  cert: string;
  /** The cluster key: handed to a member that joins with a valid token, never logged. */
  key: string;
  /** The members' ClusterMember services (state, leave). */
  members: MemberClients;
  /** The cluster TLS for gRPC clients (rotates with `lxc cluster update-certificate`). */
  tls: LiveTls;
  /** Trust answers, remembered briefly (see TrustCache). */
  trust: TrustCache;
  /** Hot reads from memory, invalidated by the database's Watch stream (cache/read-cache.ts). */
  cache: ReadCache;
  /** /1.0/events listeners; `events.log()` makes this gateway's `logging` events. */
  events: EventHub;
  certFingerprint: string;
  serverName: string;
  /** The HTTPS address actually bound, "host:port". */
  httpsAddress(): string;
}

declare module "fastify" {
  interface FastifyRequest {
    /** On the unix socket, or a client certificate in the trust store. */
    trusted: boolean;
    /** The client certificate of the TLS connection, if one was presented. */
    clientCertificate: ParsedCertificate | undefined;
  }
  interface FastifyContextConfig {
    /** The route answers untrusted clients too (it decides what they see). */
    untrusted?: boolean;
  }
}

export interface Gateway {
  httpsAddress: string;
  unixSocket: string;
  /** How many /1.0/events websocket listeners this gateway serves now. */
  eventListeners(): number;
  close(): Promise<void>;
}

/**
 * The HTTPS listener's TLS, also when the certificate rotates. No session tickets that
 * resume: `lxc` opens a connection per request and never resumes one, yet each
 * stateless TLS 1.3 ticket cost the handshake an encryption and a parse of the client
 * certificate (~0.3 ms of ~1.5 per connection, perf). With SSL_OP_NO_TICKET OpenSSL
 * sends stateful tickets only, which nothing stores (Node keeps no session cache
 * without 'newSession' listeners), so every connection does a full handshake and
 * presents its client certificate.
 */
const TLS_CONTEXT = { minVersion: "TLSv1.3", secureOptions: constants.SSL_OP_NO_TICKET } as const;

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const [host, portText] = splitHostPort(opts.listen);
  checkSans(opts.cert, host);
  let bound = opts.listen;
  const tls = opts.tls ?? new LiveTls({ cert: opts.cert, key: opts.key, ca: opts.cert });
  const members = new MemberClients(tls);
  // Reads of small, hot tables come from memory while the database's Watch stream
  // says they did not change; a write through this gateway drops those of the tables it
  // writes at once.
  const cache = new ReadCache(hasWatch(opts.db) ? opts.db : { watch: () => () => undefined });
  const db = clearingOnWrite(opts.db, cache);
  const trust = new TrustCache(db, undefined, cache);
  cache.onChange((tables) => {
    if (tables.includes("certificates")) trust.forget();
  });
  // Listeners get the members' logging events too, streamed from each member while wanted.
  // This gateway's id towards the members: its relayed logging lines are not sent back to it.
  const gatewayId = randomUUID();
  const memberList = () => cache.get("members", ["members", "cluster_group_members"], () => listMembers(db));
  const events = new EventHub(db, {
    location: opts.serverName,
    members: {
      members: memberList,
      open: (address, types) => members.events(address, types, gatewayId),
    },
    relay: new GatewayLogRelay({ id: gatewayId, members: memberList, relay: (address, gateway, bodies) => members.relayEvents(address, gateway, bodies) }),
  });
  cache.onChange((tables) => {
    if (tables.includes("events")) events.pollNow();
  });
  const ctx: GatewayContext = {
    db,
    cache,
    events,
    cert: opts.cert,
    key: opts.key,
    members,
    tls,
    trust,
    certFingerprint: fingerprint(opts.cert),
    serverName: opts.serverName,
    httpsAddress: () => bound,
  };
  const bodyLimit = opts.bodyLimit ?? 1 << 20;
  let stopWatch: () => void = () => undefined;

  const https = buildApp(ctx, {
    bodyLimit,
    https: { key: opts.key, cert: opts.cert, requestCert: true, rejectUnauthorized: false, ...TLS_CONTEXT },
  });
  const unix = buildApp(ctx, { bodyLimit });
  // /1.0/events and operation websockets (exec) are served from the listeners' upgrade event.
  const upgrade = (trusted: boolean) => (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    isOperationWebsocket(req) ? handleOperationWebsocket(req, socket, head) : events.handleUpgrade(req, socket, head, trusted);
  https.server.on("upgrade", upgrade(false));
  unix.server.on("upgrade", upgrade(true));
  try {
    await https.listen({ host, port: Number(portText) });
    const addr = https.server.address();
    if (addr && typeof addr === "object") bound = `${addr.family === "IPv6" ? `[${addr.address}]` : addr.address}:${addr.port}`;

    // `lxc cluster update-certificate`: new HTTPS connections get the rotated
    // certificate at the switch time, as do the gRPC channels through `tls`.
    const stopCertificateWatch = watchClusterCertificate({
      db,
      tls,
      certPath: opts.certPath,
      keyPath: opts.keyPath,
      onSwitch: (cert, key) => {
        (https.server as unknown as import("node:tls").Server).setSecureContext({ cert, key, ...TLS_CONTEXT });
        ctx.cert = cert;
        ctx.key = key;
        ctx.certFingerprint = fingerprint(cert);
      },
    });
    stopWatch = stopCertificateWatch;

    mkdirSync(opts.dir, { recursive: true });
    const unixSocket = join(opts.dir, "unix.socket");
    rmSync(unixSocket, { force: true }); // a stale socket of a previous run
    await unix.listen({ path: unixSocket });
    chmodSync(unixSocket, 0o660);
    return {
      httpsAddress: bound,
      unixSocket,
      eventListeners: () => events.size,
      close: async () => {
        stopWatch();
        cache.close();
        events.close();
        await Promise.all([https.close(), unix.close()]);
        members.close();
      },
    };
  } catch (e) {
    stopWatch();
    cache.close();
    events.close();
    await Promise.allSettled([https.close(), unix.close()]);
    members.close();
    throw e;
  }
}

function buildApp(ctx: GatewayContext, opts: { bodyLimit: number; https?: { key: string; cert: string; requestCert: true; rejectUnauthorized: false } & typeof TLS_CONTEXT }): FastifyInstance {
  // /1.0/containers[/…] is served by the /1.0/instances routes (routes/containers.ts).
  const common = { logger: false, bodyLimit: opts.bodyLimit, frameworkErrors: frameworkError, rewriteUrl: containersAsInstances };
  const app = (opts.https ? Fastify({ https: opts.https, ...common }) : Fastify(common)) as unknown as FastifyInstance;
  const onUnixSocket = !opts.https;

  app.decorateRequest("trusted", false);
  app.decorateRequest("clientCertificate", undefined);

  // Every body is JSON whatever its content type (the Go client always sends JSON);
  // unknown fields are left for the routes' zod schemas to strip.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    try {
      // "__proto__" keys are refused: assigning them would swap an object's prototype.
      done(null, JSON.parse(text, (k: string, v: unknown) => {
        if (k === "__proto__") throw new SyntaxError('the key "__proto__" is not allowed');
        return v;
      }));
    } catch (e) {
      done(ApiError.badRequest(`invalid JSON in request body: ${(e as Error).message}`));
    }
  });

  app.addHook("onRequest", async (req) => {
    if (onUnixSocket) {
      req.trusted = true;
    } else {
      req.clientCertificate = peerCertificate(req.raw.socket as TLSSocket);
      if (req.clientCertificate) req.trusted = await ctx.trust.isTrusted(req.clientCertificate.fingerprint);
    }
    if (!req.trusted && !req.is404 && !req.routeOptions.config.untrusted) throw ApiError.forbidden();
    // LXD's debug line for every request, for /1.0/events listeners that want logging.
    if (req.trusted && ctx.events.wants("logging")) {
      const who = requestor(req);
      ctx.events.log("debug", "Handling API request", { ip: who.address, method: req.method, protocol: who.protocol, url: req.url, username: who.username });
    }
  });

  app.setErrorHandler((err: FastifyError | Error, _req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof ApiError) return sendError(reply, err.status, err.message);
    if (err instanceof DatabaseClientError) {
      if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
        return sendError(reply, 503, `the cluster database is unavailable: ${err.message}`);
      }
      return sendError(reply, 500, `database error: ${err.message}`);
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) return sendError(reply, status, err.message);
    process.stderr.write(`shoal-api: internal error: ${err.stack ?? err.message}\n`);
    return sendError(reply, 500, "internal error");
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, 404, "not found"));

  app.register(serverRoutes(ctx));
  app.register(certificateRoutes(ctx));
  app.register(operationRoutes(ctx));
  app.register(projectRoutes(ctx));
  app.register(profileRoutes(ctx));
  app.register(storagePoolRoutes(ctx));
  app.register(networkRoutes(ctx));
  app.register(clusterRoutes(ctx));
  app.register(clusterEvacuationRoutes(ctx));
  app.register(clusterJoinRoutes(ctx));
  app.register(clusterGroupRoutes(ctx));
  app.register(imageRoutes(ctx));
  app.register(instanceRoutes(ctx));
  app.register(instanceExecRoutes(ctx));
  app.register(instanceFileRoutes(ctx));
  app.register(scriptletRoutes(ctx));
  return app;
}

function frameworkError(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  sendError(reply, err.statusCode && err.statusCode < 500 ? err.statusCode : 400, err.message);
}

export function splitHostPort(address: string): [string, string] {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`listen address must be host:port, got ${JSON.stringify(address)}`);
  return [m[1], m[2]];
}

/** The real client refuses a server certificate without an IP SAN for the address it dials. */
export function checkSans(certPem: string, host: string): void {
  if (isIP(host) !== 4 || host === "0.0.0.0") return; // IPv6 spellings vary; checked for IPv4 only
  const sans = new X509Certificate(certPem).subjectAltName ?? "";
  const ips = sans.split(", ").filter((s) => s.startsWith("IP Address:")).map((s) => s.slice("IP Address:".length));
  if (!ips.includes(host)) {
    throw new Error(`the cluster certificate has no IP SAN for ${host} (it has: ${ips.join(", ") || "none"}); lxc would refuse it`);
  }
}

function hasWatch(db: Database): db is Database & WatchSource {
  return typeof (db as Partial<WatchSource>).watch === "function";
}

/** `db` whose writes also drop the gateway's cached reads (read-your-writes here). */
function clearingOnWrite(db: Database, cache: ReadCache): Database {
  return withExec(db, async (statements, opts) => {
    try {
      return await db.exec(statements, opts);
    } finally {
      // Only the reads of the tables written: creating instances in a burst keeps the
      // cached members, config, projects and profiles (each a linearizable read).
      const tables = tablesWrittenBy(statements);
      if (tables) cache.invalidate(tables);
      else cache.clear();
    }
  });
}
