// LXD-style certificates: every cluster member shares one self-signed
// certificate (cluster.crt / cluster.key) and identifies peers by it.
import { createHash, createPrivateKey, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { isIP } from "node:net";

/**
 * @peculiar/x509 is loaded only to generate a certificate: it costs ~100 ms of
 * start-up, which every process that merely loads or checks certificates skips.
 * reflect-metadata must load before it (its ASN.1 schema uses decorators).
 */
async function loadX509(): Promise<typeof import("@peculiar/x509")> {
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  x509.cryptoProvider.set(webcrypto as Crypto);
  return x509;
}

export interface CertificatePair {
  /** PEM "CERTIFICATE". */
  cert: string;
  /** PEM "EC PRIVATE KEY" (SEC1), as LXD writes its keys. */
  key: string;
}

export interface CertificateOptions {
  /** Subject common name, e.g. "root@host" or the cluster name. */
  commonName: string;
  /** SAN entries: DNS names and IP addresses (both v4 and v6 are recognised). */
  hosts?: string[];
  /** Validity in days from now; default 10 years. */
  validityDays?: number;
  /**
   * The ECDSA curve (signature hash to match): P-384 / SHA-384 by default, as LXD;
   * P-256 / SHA-256 costs a TLS server and the Go client far less per handshake.
   */
  curve?: "P-256" | "P-384";
}

const DEFAULT_HOSTS = ["localhost", "127.0.0.1", "::1"];

/** Generates an ECDSA certificate (P-384 / SHA-384 unless `curve` says otherwise) usable as both TLS server and client. */
export async function generateCertificate(opts: CertificateOptions): Promise<CertificatePair> {
  const x509 = await loadX509();
  const curve = opts.curve ?? "P-384";
  const alg = { name: "ECDSA", namedCurve: curve, hash: curve === "P-256" ? "SHA-256" : "SHA-384" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const days = opts.validityDays ?? 3650;
  const hosts = opts.hosts ?? DEFAULT_HOSTS;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial128(),
    name: [{ O: ["Shoal"] }, { CN: [opts.commonName] }],
    // A minute of slack for clocks that are slightly behind ours.
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => ({ type: isIP(h) ? ("ip" as const) : ("dns" as const), value: h })),
      ),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const key = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" })
    .export({ format: "pem", type: "sec1" })
    .toString();
  return { cert: cert.toString("pem") + "\n", key };
}

/** A positive random 128-bit serial (the leading zero byte keeps the DER INTEGER positive). */
function serial128(): string {
  return "00" + randomBytes(16).toString("hex");
}

/**
 * LXD's certificate fingerprint: lowercase hex SHA-256 of the DER encoding.
 * Accepts PEM (the first certificate in it) or DER bytes.
 */
export function fingerprint(cert: string | Uint8Array): string {
  const der = typeof cert === "string" ? new X509Certificate(cert).raw : cert;
  return createHash("sha256").update(der).digest("hex");
}

/** Splits a PEM bundle into its certificates (PEM each). */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export async function loadCertificate(certPath: string, keyPath: string): Promise<CertificatePair> {
  const [cert, key] = await Promise.all([readFile(certPath, "utf8"), readFile(keyPath, "utf8")]);
  return { cert, key };
}

/** Writes atomically (temp file + rename); the key is created with mode 0600. */
export async function saveCertificate(pair: CertificatePair, certPath: string, keyPath: string): Promise<void> {
  await writeAtomic(keyPath, pair.key, 0o600);
  await writeAtomic(certPath, pair.cert, 0o644);
}

/** Loads the pair if both files exist, else generates and saves a new one. */
export async function loadOrCreateCertificate(
  certPath: string,
  keyPath: string,
  opts: CertificateOptions,
): Promise<CertificatePair> {
  try {
    return await loadCertificate(certPath, keyPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const pair = await generateCertificate(opts);
  await saveCertificate(pair, certPath, keyPath);
  return pair;
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode });
  // writeFile's mode is filtered by the umask and ignored for existing files.
  await chmod(tmp, mode);
  await rename(tmp, path);
}
