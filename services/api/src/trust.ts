// The trust store: certificates allowed to use the API, in the replicated
// `certificates` table, keyed by LXD fingerprint (sha256 of the DER, lowercase hex).
import { X509Certificate } from "node:crypto";
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
  const commonName = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? "";
  return { pem: cert.toString(), fingerprint: fingerprint(cert.raw), commonName };
}

export async function isTrusted(db: Database, fp: string): Promise<boolean> {
  const r = await db.query("SELECT 1 FROM certificates WHERE fingerprint = ?", [fp]);
  return r.rows.length > 0;
}

/**
 * Trust answers remembered briefly per gateway, so a keep-alive client does not pay
 * a linearizable database read on every request. Only "trusted" is remembered, for
 * TRUST_CACHE_MS: a removed certificate stops working within that time on every
 * gateway, and at once on the gateway that removed it (it calls forget).
 */
export const TRUST_CACHE_MS = 1_000;

export class TrustCache {
  private readonly trusted = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly ttlMs = TRUST_CACHE_MS,
  ) {}

  async isTrusted(fp: string): Promise<boolean> {
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

