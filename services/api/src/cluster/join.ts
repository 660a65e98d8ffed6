// The joining side of `shoal member --join TOKEN`: find a gateway from the token
// whose certificate matches the token's fingerprint, and redeem the token there.
import { request } from "node:https";
import { connect, type PeerCertificate } from "node:tls";
import { fingerprint } from "../../../raft/src/transport/certificate.ts";
import type { JoinReply, JoinRequest } from "../routes/cluster-join.ts";
import type { JoinToken } from "./join-tokens.ts";

const TIMEOUT_MS = 10_000;

/** Asks each address in turn; the first whose certificate matches the token answers. */
export async function redeemJoinToken(token: JoinToken, req: Omit<JoinRequest, "server_name" | "secret">): Promise<JoinReply> {
  const errors: string[] = [];
  for (const address of token.addresses) {
    try {
      return await post(address, token.fingerprint, { ...req, server_name: token.server_name, secret: token.secret });
    } catch (e) {
      const err = e as Error & { definite?: boolean };
      // A refusal from the cluster itself (bad token, name taken) is final.
      if (err.definite) throw err;
      errors.push(`${address}: ${err.message}`);
    }
  }
  throw new Error(`Unable to connect to any of the cluster members specified in join token (${errors.join("; ")})`);
}

/** The DER certificate a TLS server presents (nothing is sent but the handshake). */
function peerCertificate(host: string, port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, rejectUnauthorized: false, timeout: TIMEOUT_MS }, () => {
      const raw = socket.getPeerCertificate(false)?.raw;
      socket.destroy();
      if (raw) resolve(raw);
      else reject(new Error("no certificate presented"));
    });
    socket.on("timeout", () => socket.destroy(new Error("timed out")));
    socket.on("error", reject);
  });
}

async function post(address: string, want: string, body: JoinRequest): Promise<JoinReply> {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error("not host:port");
  const [host, port] = [m[1], Number(m[2])];
  const der = await peerCertificate(host, port);
  if (fingerprint(der) !== want) {
    throw Object.assign(new Error(`Certificate fingerprint mismatch between join token and cluster member "${address}"`), { definite: true });
  }
  // From here the certificate is pinned: TLS itself proves the server holds its key.
  const ca = `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END CERTIFICATE-----\n`;
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host,
        port,
        method: "POST",
        path: "/internal/cluster/join",
        ca,
        checkServerIdentity: (_host: string, cert: PeerCertificate) => (cert.raw && fingerprint(cert.raw) === want ? undefined : new Error("certificate changed")),
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        timeout: TIMEOUT_MS,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          let parsed: { error?: string; metadata?: JoinReply } = {};
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as typeof parsed;
          } catch {
            // handled below
          }
          if (res.statusCode === 200 && parsed.metadata) return resolve(parsed.metadata);
          reject(Object.assign(new Error(`Failed to join cluster: ${parsed.error || `HTTP ${res.statusCode}`}`), { definite: true }));
        });
      },
    );
    r.on("timeout", () => r.destroy(new Error("timed out")));
    r.on("error", reject);
    r.end(payload);
  });
}
