import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fingerprint,
  generateCertificate,
  loadCertificate,
  loadOrCreateCertificate,
  saveCertificate,
} from "../../src/transport/certificate.ts";

test("generates an LXD-style ECDSA P-384 certificate that Node parses", async () => {
  const now = Date.now();
  const pair = await generateCertificate({ commonName: "root@node1", hosts: ["node1.lxd", "127.0.0.1", "::1"] });
  const x = new X509Certificate(pair.cert);
  assert.equal(x.subject, "O=Shoal\nCN=root@node1");
  assert.equal(x.issuer, x.subject);
  assert.ok(x.verify(x.publicKey), "self-signed");
  assert.equal(x.publicKey.asymmetricKeyType, "ec");
  assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, "secp384r1");
  assert.equal(x.ca, false);
  assert.deepEqual(x.keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]); // serverAuth, clientAuth
  assert.equal(x.subjectAltName, "DNS:node1.lxd, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
  assert.ok(x.checkHost("node1.lxd"));
  assert.ok(x.checkIP("127.0.0.1"));
  assert.match(x.serialNumber, /^[0-9A-F]{1,32}$/);
  const from = Date.parse(x.validFrom);
  const to = Date.parse(x.validTo);
  assert.ok(from <= now - 55_000 && from >= now - 65_000, "valid from about a minute ago");
  const tenYears = 3650 * 86_400_000;
  assert.ok(Math.abs(to - now - tenYears) < 5_000, "valid for ten years");

  const key = createPrivateKey(pair.key);
  assert.match(pair.key, /^-----BEGIN EC PRIVATE KEY-----/);
  assert.ok(x.checkPrivateKey(key));
});

test("serial numbers are random", async () => {
  const a = await generateCertificate({ commonName: "a" });
  const b = await generateCertificate({ commonName: "a" });
  assert.notEqual(new X509Certificate(a.cert).serialNumber, new X509Certificate(b.cert).serialNumber);
});

test("fingerprint is lowercase hex sha256 of the DER", async () => {
  const pair = await generateCertificate({ commonName: "fp" });
  const x = new X509Certificate(pair.cert);
  const fp = fingerprint(pair.cert);
  assert.match(fp, /^[0-9a-f]{64}$/);
  assert.equal(fp, createHash("sha256").update(x.raw).digest("hex"));
  assert.equal(fp, x.fingerprint256.replaceAll(":", "").toLowerCase());
  assert.equal(fingerprint(x.raw), fp);
});

test("save writes the key with mode 0600; load and loadOrCreate read it back", async () => {
  const dir = await mkdtemp(join(tmpdir(), "shoal-cert-"));
  try {
    const certPath = join(dir, "sub", "cluster.crt");
    const keyPath = join(dir, "sub", "cluster.key");
    const created = await loadOrCreateCertificate(certPath, keyPath, { commonName: "cluster" });
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
    assert.equal((await stat(certPath)).mode & 0o777, 0o644);
    assert.deepEqual(await loadCertificate(certPath, keyPath), created);
    assert.deepEqual(await loadOrCreateCertificate(certPath, keyPath, { commonName: "other" }), created);

    const other = await generateCertificate({ commonName: "other" });
    await saveCertificate(other, certPath, keyPath);
    assert.equal(await readFile(keyPath, "utf8"), other.key);
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
