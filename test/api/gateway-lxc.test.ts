// Acceptance: the real `lxc` 5.0.2 client against the gateway, with the state in a
// 1-node replicated database. Over the unix socket (full trust) and over HTTPS
// (trust by client certificate, added with core.trust_password).
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fingerprint, generateCertificate } from "../../services/raft/src/transport/certificate.ts";
import { https, LXC, lxc, startHarness, type Harness } from "./support.ts";

const PASSWORD = "s3cret";

describe("gateway driven by the real lxc client", { skip: existsSync(LXC) ? false : `${LXC} missing (apt-get install lxd-client)` }, () => {
  let h: Harness;
  let local: { LXD_CONF: string; LXD_DIR: string };
  let remoteConf: { LXD_CONF: string };

  const certRows = async () => (await h.db.query("SELECT fingerprint FROM certificates ORDER BY fingerprint")).rows.map((r) => String(r[0]));

  before(async () => {
    h = await startHarness("shoal-test");
    local = { LXD_CONF: join(h.scratch, "local-conf"), LXD_DIR: h.dir };
    remoteConf = { LXD_CONF: join(h.scratch, "remote-conf") };
  });
  after(async () => {
    await h?.close();
  });

  test("lxc info over the unix socket is trusted and shows the server", async () => {
    const r = await lxc(["info"], local);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^auth: trusted$/m);
    assert.match(r.stdout, /^\s+server_name: shoal-test$/m);
    assert.match(r.stdout, new RegExp(`^\\s+certificate_fingerprint: ${fingerprint(h.cluster.tls.cert)}$`, "m"));
    assert.match(r.stdout, new RegExp(`core.https_address: ${h.gateway.httpsAddress.replace(/\./g, "\\.")}`));
  });

  test("lxc config set core.trust_password stores only a salted hash", async () => {
    const r = await lxc(["config", "set", "core.trust_password", PASSWORD], local);
    assert.equal(r.code, 0, r.stderr);
    const stored = (await h.db.query("SELECT value FROM config WHERE key = 'core.trust_password'")).rows[0]?.[0];
    assert.match(String(stored), /^scrypt\$/);
    assert.ok(!String(stored).includes(PASSWORD));
    const shown = await lxc(["config", "get", "core.trust_password"], local);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout.trim(), "true"); // never the password nor its hash
  });

  test("lxc remote add with a wrong password is refused and adds nothing", async () => {
    const before = await certRows();
    const conf = { LXD_CONF: join(h.scratch, "wrong-conf") };
    const r = await lxc(["remote", "add", "shoal", `https://${h.gateway.httpsAddress}`, "--password", "not-it", "--accept-certificate"], conf);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not authorized/);
    assert.deepEqual(await certRows(), before);
  });

  test("lxc remote add --password, then lxc info shoal: over HTTPS with the client certificate", async () => {
    const add = await lxc(["remote", "add", "shoal", `https://${h.gateway.httpsAddress}`, "--password", PASSWORD, "--accept-certificate"], remoteConf);
    assert.equal(add.code, 0, add.stderr);
    const clientFp = fingerprint(readFileSync(join(remoteConf.LXD_CONF, "client.crt"), "utf8"));
    assert.ok((await certRows()).includes(clientFp));

    const info = await lxc(["info", "shoal:"], remoteConf);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^auth: trusted$/m);
    assert.match(info.stdout, /^\s+server_name: shoal-test$/m);

    const list = await lxc(["config", "trust", "list", "shoal:", "--format", "csv"], remoteConf);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(clientFp.slice(0, 12)));
  });

  test("lxc config trust add FILE / list / remove over HTTPS", async () => {
    const other = await generateCertificate({ commonName: "other-client" });
    const file = join(h.scratch, "other.crt");
    writeFileSync(file, other.cert);
    const fp = fingerprint(other.cert);

    const add = await lxc(["config", "trust", "add", "shoal:", file], remoteConf);
    assert.equal(add.code, 0, add.stderr);
    assert.ok((await certRows()).includes(fp));
    const again = await lxc(["config", "trust", "add", "shoal:", file], remoteConf);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /Certificate already in trust store/);

    const list = await lxc(["config", "trust", "list", "shoal:", "--format", "csv"], remoteConf);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^client,other\\.crt,other-client,${fp.slice(0, 12)},`, "m"));

    const rm = await lxc(["config", "trust", "remove", "shoal:", fp.slice(0, 12)], remoteConf);
    assert.equal(rm.code, 0, rm.stderr);
    assert.ok(!(await certRows()).includes(fp));
  });

  describe("raw HTTPS with a trusted client certificate", () => {
    let client: { cert: string; key: string; ca: string };
    const req = (method: string, path: string, body?: string, headers?: Record<string, string>) =>
      https(h.gateway.httpsAddress, method, path, { ...client, body, headers });

    before(() => {
      client = {
        cert: readFileSync(join(remoteConf.LXD_CONF, "client.crt"), "utf8"),
        key: readFileSync(join(remoteConf.LXD_CONF, "client.key"), "utf8"),
        ca: h.cluster.tls.cert,
      };
    });

    const assertLxdError = (r: { status: number; headers: Record<string, unknown>; body: any }, status: number, message: RegExp) => {
      assert.equal(r.status, status);
      assert.equal(r.headers["x-content-type-options"], "nosniff");
      assert.deepEqual(Object.keys(r.body).sort(), ["error", "error_code", "metadata", "operation", "status", "status_code", "type"]);
      assert.equal(r.body.type, "error");
      assert.equal(r.body.status, "");
      assert.equal(r.body.status_code, 0);
      assert.equal(r.body.error_code, status);
      assert.equal(r.body.metadata, null);
      assert.match(r.body.error, message);
    };

    test("bad input gets LXD-style 4xx errors and changes nothing", async () => {
      const before = await req("GET", "/1.0");
      assert.equal(before.status, 200);
      assert.equal(before.body.metadata.auth, "trusted");
      const etag = String(before.headers.etag);

      assertLxdError(await req("PUT", "/1.0", '{"config": {"core.trust_password": '), 400, /invalid JSON/);
      assertLxdError(await req("PATCH", "/1.0", "[1,2"), 400, /invalid JSON/);
      assertLxdError(await req("PUT", "/1.0", JSON.stringify({ config: { "core.trust_password": true, "nosuch.key": "1" } })), 400, /^cannot set 'nosuch\.key' to '1': unknown key$/);
      assertLxdError(await req("PATCH", "/1.0", JSON.stringify({ config: { "core.trust_password": 7 } })), 400, /'core\.trust_password'.*must be a string/);
      assertLxdError(await req("PUT", "/1.0", JSON.stringify({ config: {} }), { "if-match": '"stale"' }), 412, /ETag doesn't match/);
      assertLxdError(await req("PUT", "/1.0", JSON.stringify({ config: { x: "y".repeat(70 * 1024) } })), 413, /.+/);
      assertLxdError(await req("POST", "/1.0/certificates", '{"type": "client", "certificate": "not base64 DER"}'), 400, /invalid certificate/);
      assertLxdError(await req("GET", "/1.0/nosuch"), 404, /^not found$/);
      assertLxdError(await req("PUT", "/1.0", ""), 400, /invalid request body/);
      assertLxdError(await req("PUT", "/1.0", "[1]"), 400, /invalid request body/);
      assertLxdError(await req("PUT", "/1.0", '{"config": "core.trust_password=x"}'), 400, /invalid request body/);
      assertLxdError(await req("PATCH", "/1.0", '{"config": {"__proto__": {"x": "1"}}}'), 400, /__proto__/);
      assertLxdError(await req("PATCH", "/1.0", '{"config": {"nosuch": "1"}}', { "content-type": "text/plain" }), 400, /^cannot set 'nosuch' to '1': unknown key$/);
      assertLxdError(await req("POST", "/1.0/certificates", '{"type": 5}'), 400, /invalid request body at 'type'/);
      assertLxdError(await req("GET", "/1.0/certificates/zz"), 404, /Certificate not found/);

      const afterwards = await req("GET", "/1.0");
      assert.equal(afterwards.headers.etag, etag);
      assert.deepEqual(afterwards.body.metadata.config, before.body.metadata.config);
      assert.equal(afterwards.body.metadata.config["core.trust_password"], true);
    });

    test("unknown extra JSON fields are ignored; PATCH with the current ETag applies", async () => {
      const cur = await req("GET", "/1.0");
      const r = await req("PATCH", "/1.0", JSON.stringify({ config: {}, bogus_field: { nested: 1 } }), { "if-match": String(cur.headers.etag) });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { type: "sync", status: "Success", status_code: 200, operation: "", error_code: 0, error: "", metadata: null });
    });

    test("two writes with the same ETag: exactly one applies, the other is a 412", async () => {
      const cur = await req("GET", "/1.0");
      const etag = String(cur.headers.etag);
      const stored = async () => (await h.db.query("SELECT value FROM config WHERE key = 'core.trust_password'")).rows[0]?.[0];
      const before = await stored();
      const results = await Promise.all(
        ["first-new", "second-new"].map((p) => req("PATCH", "/1.0", JSON.stringify({ config: { "core.trust_password": p } }), { "if-match": etag })),
      );
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 412]);
      assert.match(results.find((r) => r.status === 412)!.body.error, /ETag doesn't match/);
      assert.notEqual(await stored(), before);
      // Put the password the later tests use back.
      const now = await req("GET", "/1.0");
      const reset = await req("PATCH", "/1.0", JSON.stringify({ config: { "core.trust_password": PASSWORD } }), { "if-match": String(now.headers.etag) });
      assert.equal(reset.status, 200);
    });

    test("an untrusted certificate sees only the untrusted view and gets 403 elsewhere", async () => {
      const stranger = await generateCertificate({ commonName: "stranger" });
      const as = (method: string, path: string, body?: string) => https(h.gateway.httpsAddress, method, path, { ...stranger, ca: h.cluster.tls.cert, body });
      const server = await as("GET", "/1.0");
      assert.equal(server.status, 200);
      assert.deepEqual(Object.keys(server.body.metadata).sort(), ["api_extensions", "api_status", "api_version", "auth", "auth_methods", "public"]);
      assert.equal(server.body.metadata.auth, "untrusted");
      assertLxdError(await as("GET", "/1.0/certificates"), 403, /^not authorized$/);
      assertLxdError(await as("PUT", "/1.0", JSON.stringify({ config: {} })), 403, /^not authorized$/);
      const before = await certRows();
      assertLxdError(await as("POST", "/1.0/certificates", JSON.stringify({ type: "client", password: "wrong" })), 403, /^not authorized$/);
      assert.deepEqual(await certRows(), before);
    });
  });

  test("lxc config unset core.trust_password: the old password no longer adds a client", async () => {
    const unset = await lxc(["config", "unset", "shoal:", "core.trust_password"], remoteConf);
    assert.equal(unset.code, 0, unset.stderr);
    assert.equal((await h.db.query("SELECT count(*) FROM config WHERE key = 'core.trust_password'")).rows[0][0], 0);
    const before = await certRows();
    const r = await lxc(["remote", "add", "late", `https://${h.gateway.httpsAddress}`, "--password", PASSWORD, "--accept-certificate"], {
      LXD_CONF: join(h.scratch, "late-conf"),
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not authorized/);
    assert.deepEqual(await certRows(), before);
  });
});
