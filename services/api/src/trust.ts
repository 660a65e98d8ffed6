// The trust store: certificates allowed to use the API, in the replicated
// `certificates` table, keyed by LXD fingerprint (sha256 of the DER, lowercase hex).
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { Param } from "../../raft/src/db/param.ts";
import { fingerprint } from "../../raft/src/transport/certificate.ts";
import { ApiError } from "./response.ts";
import type { Database } from "./schema.ts";

export interface TrustedCertificate {
  name: string;
  type: string;
  restricted: boolean;
  projects: string[];
  certificate: string;
  fingerprint: string;
}

export interface ParsedCertificate {
  pem: string;
  fingerprint: string;
  commonName: string;
}

/** Accepts PEM or base64 DER (what `lxc config trust add FILE` sends) or raw DER bytes. */
export function parseCertificate(input: string | Buffer): ParsedCertificate {
  let cert: X509Certificate;
  try {
    const der = typeof input === "string" && !input.includes("-----BEGIN") ? Buffer.from(input.replace(/\s+/g, ""), "base64") : input;
    cert = new X509Certificate(der);
  } catch {
    throw ApiError.badRequest("invalid certificate material");
  }
  return { pem: cert.toString(), fingerprint: fingerprint(cert.raw), commonName: commonNameOf(cert) };
}

/**
 * The client certificate of a TLS connection, or undefined. The certificate OpenSSL
 * parsed during the handshake is used as is (parsing its DER again costs ~0.15 ms of
 * OpenSSL 3 decoding per request, about what a whole keep-alive request costs);
 * PEM and common name are derived only when a route asks for them.
 */
export function peerCertificate(socket: TLSSocket): ParsedCertificate | undefined {
  const cert = socket.getPeerX509Certificate?.();
  if (!cert) return undefined;
  return {
    fingerprint: fingerprint(cert.raw),
    get pem() {
      return cert.toString();
    },
    get commonName() {
      return commonNameOf(cert);
    },
  };
}

function commonNameOf(cert: X509Certificate): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? "";
}

export async function isTrusted(db: Database, fp: string): Promise<boolean> {
  const r = await db.query("SELECT 1 FROM certificates WHERE fingerprint = ?", [fp]);
  return r.rows.length > 0;
}

/**
 * Trust answers per gateway, so that a request does not pay a linearizable database
 * read. While the gateway's read cache is live (its Watch stream reports every change
 * to `certificates`), the set of trusted fingerprints is kept in it and dropped (and
 * loaded again) on any change: a removed certificate stops working as soon as the
 * stream reports the removal, on every gateway. A fingerprint not in the set is
 * asked for in the database every time (as before). Otherwise only "trusted" answers are
 * remembered, for TRUST_CACHE_MS: a removed certificate stops working within that time
 * on every gateway, and at once on the gateway that removed it (it calls forget).
 */
export const TRUST_CACHE_MS = 1_000;

/** The part of the gateway's read cache (cache/read-cache.ts) trust answers use. */
export interface TrustReadCache {
  readonly isLive: boolean;
  get<T>(key: string, tables: readonly string[], load: () => Promise<T>): Promise<T>;
}

export class TrustCache {
  private readonly trusted = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly ttlMs = TRUST_CACHE_MS,
    private readonly cache?: TrustReadCache,
  ) {}

  async isTrusted(fp: string): Promise<boolean> {
    // A fingerprint missing from the set asks the database: it may have been trusted
    // through another gateway a moment ago, before the stream reported it here.
    if (this.cache?.isLive && (await this.cache.get("trusted-fingerprints", ["certificates"], () => trustedFingerprints(this.db))).has(fp)) {
      return true;
    }
    const until = this.trusted.get(fp);
    if (until !== undefined && until > Date.now()) return true;
    const ok = await isTrusted(this.db, fp);
    if (ok) this.trusted.set(fp, Date.now() + this.ttlMs);
    else this.trusted.delete(fp);
    if (this.trusted.size > 10_000) this.trusted.clear();
    return ok;
  }

  forget(fp?: string): void {
    if (fp === undefined) this.trusted.clear();
    else this.trusted.delete(fp);
  }
}

async function trustedFingerprints(db: Database): Promise<Set<string>> {
  const r = await db.query("SELECT fingerprint FROM certificates");
  return new Set(r.rows.map((row) => String(row[0])));
}

const COLUMNS = "fingerprint, name, type, certificate, restricted, projects";

function fromRow(row: Param[]): TrustedCertificate {
  const [fp, name, type, certificate, restricted, projects] = row;
  let list: string[] = [];
  try {
    const p = JSON.parse(String(projects ?? "[]"));
    if (Array.isArray(p)) list = p.map(String);
  } catch {
    list = [];
  }
  return { name: String(name), type: String(type), restricted: Number(restricted) !== 0, projects: list, certificate: String(certificate), fingerprint: String(fp) };
}

export async function listCertificates(db: Database): Promise<TrustedCertificate[]> {
  const r = await db.query(`SELECT ${COLUMNS} FROM certificates ORDER BY fingerprint`);
  return r.rows.map(fromRow);
}

/** By full fingerprint or a unique prefix of it, as LXD allows. */
export async function getCertificate(db: Database, fpPrefix: string): Promise<TrustedCertificate> {
  if (!/^[0-9a-f]{1,64}$/.test(fpPrefix)) throw ApiError.notFound("Certificate not found");
  const r = await db.query(`SELECT ${COLUMNS} FROM certificates WHERE fingerprint >= ? AND fingerprint < ? ORDER BY fingerprint LIMIT 2`, [
    fpPrefix,
    fpPrefix + "g",
  ]);
  if (r.rows.length === 0) throw ApiError.notFound("Certificate not found");
  if (r.rows.length > 1) throw ApiError.badRequest("More than one certificate matches");
  return fromRow(r.rows[0]);
}

