// Rotating the cluster certificate (`lxc cluster update-certificate`) in every
// running process. The gateway that takes the request writes the new certificate to
// the `cluster_certificate` row with a switch time a few seconds ahead. Every member
// and gateway polls that row: at once it trusts the new certificate besides the old,
// and at the switch time it presents the new one (and rewrites its certificate
// files, so a restart keeps it). Trusting both before anybody switches means no two
// running processes ever refuse each other. A member that was down during the
// rotation does not know the new certificate: copy cluster.crt/.key to it.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { saveCertificate } from "../../../raft/src/transport/certificate.ts";
import type { LiveTls } from "../../../raft/src/transport/live-tls.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";

/** How long after the write processes switch identity: enough for all to trust it first. */
export const SWITCH_DELAY_MS = 3_000;

export interface CertificateRow {
  certificate: string;
  key: string;
  previous: string;
  switchAt: string;
}

/** A certificate and key a cluster can use: PEM that parses, a key that matches, IP SANs for `hosts`. */
export function checkClusterCertificate(cert: string, key: string, hosts: string[]): void {
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch {
    throw ApiError.badRequest("The cluster certificate is not a PEM-encoded X.509 certificate");
  }
  try {
    if (!x.checkPrivateKey(createPrivateKey(key))) throw new Error("mismatch");
  } catch {
    throw ApiError.badRequest("The cluster certificate key does not match the certificate");
  }
  if (Date.parse(x.validTo) < Date.now()) throw ApiError.badRequest("The cluster certificate has expired");
  const sans = (x.subjectAltName ?? "").split(", ");
  for (const h of hosts) {
    if (!sans.includes(`IP Address:${h}`)) throw ApiError.badRequest(`The cluster certificate has no IP SAN for ${h} (clients dialling it would refuse the certificate)`);
  }
}

export function rotationStatements(cert: string, key: string, previous: string, now = Date.now()) {
  return [
    {
      sql: "INSERT INTO cluster_certificate (id, certificate, key, previous, switch_at) VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET certificate = excluded.certificate, key = excluded.key, previous = excluded.previous, switch_at = excluded.switch_at",
      params: [cert, key, previous, new Date(now + SWITCH_DELAY_MS).toISOString()],
    },
  ];
}

async function readRow(db: Pick<Database, "query">, stale: boolean): Promise<CertificateRow | undefined> {
  const r = await db.query("SELECT certificate, key, previous, switch_at FROM cluster_certificate WHERE id = 1", [], { stale });
  if (!r.rows.length) return undefined;
  const [certificate, key, previous, switchAt] = r.rows[0].map(String);
  return { certificate, key, previous, switchAt };
}

export interface WatcherOptions {
  db: Pick<Database, "query">;
  tls: LiveTls;
  /** Rewritten at the switch so a restart presents the new certificate. */
  certPath?: string;
  keyPath?: string;
  /** Members read their own replica; gateways ask the leader. */
  stale?: boolean;
  intervalMs?: number;
  /** Called once this process presents the new certificate. */
  onSwitch?(cert: string, key: string): void;
  log?(line: string): void;
}

/** Polls the rotation row and applies it to `tls`; returns a stop function. */
export function watchClusterCertificate(opts: WatcherOptions): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    try {
      const row = await readRow(opts.db, opts.stale ?? false);
      if (row && row.certificate !== opts.tls.cert) {
        opts.tls.setTrusted([row.certificate, row.previous]);
        if (Date.now() >= Date.parse(row.switchAt)) {
          opts.tls.setIdentity(row.certificate, row.key);
          if (opts.certPath && opts.keyPath) await saveCertificate({ cert: row.certificate, key: row.key }, opts.certPath, opts.keyPath);
          opts.onSwitch?.(row.certificate, row.key);
          opts.log?.("now presents the rotated cluster certificate");
        }
      }
    } catch {
      // The database is unreachable for now: try again next tick.
    }
    if (!stopped) timer = setTimeout(() => void tick(), opts.intervalMs ?? 1_000);
  };
  timer = setTimeout(() => void tick(), 0);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
