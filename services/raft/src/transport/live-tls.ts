// Cluster TLS that can change while processes run (`lxc cluster update-certificate`):
// the identity (certificate + key) a process presents and the set of certificates it
// trusts are pushed to gRPC through certificate providers, so servers and channels
// pick the new ones up for new connections without a restart. A rotation first adds
// the new certificate to every process's trusted set, and only later switches the
// identities, so no two processes ever fail to trust each other on the way.
import type * as grpc from "@grpc/grpc-js";
import { fingerprint, splitPemCertificates } from "./certificate.ts";
import type { TlsConfig } from "./credentials.ts";

type CaListener = Parameters<grpc.experimental.CertificateProvider["addCaCertificateListener"]>[0];
type IdentityListener = Parameters<grpc.experimental.CertificateProvider["addIdentityCertificateListener"]>[0];

export class LiveTls implements TlsConfig, grpc.experimental.CertificateProvider {
  private identity: { cert: string; key: string };
  private trusted: string[];
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(initial: TlsConfig) {
    this.identity = { cert: initial.cert, key: initial.key };
    this.trusted = splitPemCertificates(initial.ca);
  }

  get cert(): string {
    return this.identity.cert;
  }
  get key(): string {
    return this.identity.key;
  }
  get ca(): string {
    return this.trusted.map((pem) => (pem.endsWith("\n") ? pem : `${pem}\n`)).join("");
  }

  /** Whether a peer presenting this certificate (DER or PEM) is one of ours. */
  trusts(cert: string | Uint8Array): boolean {
    const fp = fingerprint(cert);
    return this.trusted.some((pem) => fingerprint(pem) === fp);
  }

  /** Replaces the trusted set (PEM certificates); listeners get it at once. */
  setTrusted(pems: string[]): void {
    const next = [...new Set(pems.flatMap((p) => splitPemCertificates(p)))];
    if (next.join("") === this.ca) return;
    this.trusted = next;
    for (const l of this.caListeners) l({ caCertificate: Buffer.from(this.ca) });
  }

  /** Switches the identity this process presents. */
  setIdentity(cert: string, key: string): void {
    if (cert === this.identity.cert && key === this.identity.key) return;
    this.identity = { cert, key };
    for (const l of this.identityListeners) l({ certificate: Buffer.from(cert), privateKey: Buffer.from(key) });
  }

  // The first value goes out on the next tick, not inside add…Listener: grpc-js
  // registers its own watchers only after adding the listener, and would miss it.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => this.caListeners.has(listener) && listener({ caCertificate: Buffer.from(this.ca) }));
  }
  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => this.identityListeners.has(listener) && listener({ certificate: Buffer.from(this.identity.cert), privateKey: Buffer.from(this.identity.key) }));
  }
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}
