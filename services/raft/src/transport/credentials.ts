// Mutual TLS for the cluster. All members share one certificate (LXD's cluster
// certificate), so hostnames mean nothing: a peer is trusted when it presents a
// certificate chaining to `ca` and, for servers, when that certificate is one of
// the certificates in `ca` itself (pinned by fingerprint).
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { fingerprint, splitPemCertificates } from "./certificate.ts";
import { LiveTls } from "./live-tls.ts";

export interface TlsConfig {
  /** This node's certificate (PEM); usually the shared cluster certificate. */
  cert: string;
  /** Its private key (PEM). */
  key: string;
  /** Trusted certificates (PEM bundle); usually the cluster certificate again. */
  ca: string;
}

/**
 * The TLS server name clients announce. Any fixed name does: identity is checked
 * by fingerprint, and a fixed name avoids SNI with IP addresses (RFC 6066 forbids it).
 */
export const TLS_SERVER_NAME = "shoal";

/** Server side: requires and verifies a client certificate against `ca`. */
export function serverCredentials(tls: TlsConfig): grpc.ServerCredentials {
  if (tls instanceof LiveTls) return grpc.experimental.createCertificateProviderServerCredentials(tls, tls, true);
  return grpc.ServerCredentials.createSsl(
    Buffer.from(tls.ca),
    [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
    true,
  );
}

/** Client side: presents our certificate; accepts servers whose certificate is pinned in `ca`. */
export function clientCredentials(tls: TlsConfig): grpc.ChannelCredentials {
  if (tls instanceof LiveTls) {
    return grpc.experimental.createCertificateProviderChannelCredentials(tls, tls, {
      checkServerIdentity: (_host, cert) => (cert.raw && tls.trusts(cert.raw) ? undefined : new Error(`untrusted server certificate ${cert.raw ? fingerprint(cert.raw) : "(none)"}`)),
    });
  }
  return grpc.credentials.createSsl(Buffer.from(tls.ca), Buffer.from(tls.key), Buffer.from(tls.cert), {
    checkServerIdentity: pinnedIdentityCheck(tls.ca),
  });
}

/**
 * Replaces the hostname check: the server's certificate must be one of the
 * certificates in `ca` (compared by fingerprint), whatever name was dialled.
 */
export function pinnedIdentityCheck(ca: string): (host: string, cert: PeerCertificate) => Error | undefined {
  const pinned = new Set(splitPemCertificates(ca).map((pem) => fingerprint(pem)));
  return (_host, cert) => {
    const fp = cert.raw ? fingerprint(cert.raw) : "";
    return pinned.has(fp) ? undefined : new Error(`untrusted server certificate ${fp || "(none)"}`);
  };
}

/** Channel options every peer client uses. */
export const CLIENT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.ssl_target_name_override": TLS_SERVER_NAME,
  "grpc.default_authority": TLS_SERVER_NAME,
  // Detect a silently dead peer (partition, power loss) within ~10 s.
  "grpc.keepalive_time_ms": 5_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.max_receive_message_length": 64 << 20,
  // Our own reconnect loop backs off; keep the channel's first retry quick.
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 2_000,
};

export const SERVER_OPTIONS: grpc.ServerOptions = {
  "grpc.max_receive_message_length": 64 << 20,
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
};
