// The certificate a new cluster gets (cluster.crt / cluster.key): the gateway's HTTPS
// identity and every member's gRPC identity.
//
// ECDSA P-256, not LXD's P-384: every `lxc` command opens a new TLS connection per
// request (Connection: close), so the handshake's signature is paid again and again:
// the server signs with this key (OpenSSL: P-256 ~0.02 ms, P-384 ~0.6 ms) and the Go
// client verifies it (assembly P-256 vs generic P-384). Measured with the real lxc
// 5.0.2 against the same server and answers, `lxc cluster list` takes ~4.5 ms less
// (services/api/README.md, "TLS handshakes"). P-256 is 128-bit security, the level
// of the X25519 key exchange TLS 1.3 negotiates with lxc anyway. Clusters created
// before keep their certificate until `lxc cluster update-certificate`.
import type { CertificateOptions } from "../../../raft/src/transport/certificate.ts";

export const CLUSTER_CERTIFICATE_CURVE = "P-256" as const;

/** Options for a new cluster certificate with SANs `hosts` (listen addresses and names). */
export function clusterCertificateOptions(hosts: string[]): CertificateOptions {
  return { commonName: "shoal", hosts: [...new Set(hosts)], curve: CLUSTER_CERTIFICATE_CURVE };
}
