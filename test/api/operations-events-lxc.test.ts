// Acceptance: operations, trust tokens and events with the real `lxc` 5.0.2 client.
// Tokens are `token` operations in the replicated database; events are written to
// the database with the change they report, so a listener on another gateway of the
// same cluster receives them too.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fingerprint, generateCertificate } from "../../services/raft/src/transport/certificate.ts";
import { tokenAddresses } from "../../services/api/src/routes/certificates.ts";
import { startGateway, type Gateway } from "../../services/api/src/server.ts";
import { https, LXC, lxc, monitor, startHarness, type Harness } from "./support.ts";

interface Token {
  client_name: string;
  fingerprint: string;
  addresses: string[];
  secret: string;
  expires_at: string;
}

function decodeToken(text: string): Token {
  return JSON.parse(Buffer.from(text.trim(), "base64").toString("utf8")) as Token;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("a token names the HTTPS address, or every interface address when the gateway listens on a wildcard", () => {
  assert.deepEqual(tokenAddresses("127.0.0.1:8443"), ["127.0.0.1:8443"]);
  const wild = tokenAddresses("0.0.0.0:8443");
  assert.ok(wild.length >= 1);
  for (const a of wild) assert.match(a, /^(\d+\.){3}\d+:8443$/);
  assert.ok(!wild.includes("0.0.0.0:8443") || wild.length === 1);
});

describe("operations, trust tokens and events with the real lxc", { skip: existsSync(LXC) ? false : `${LXC} missing (apt-get install lxd-client)` }, () => {
  let h: Harness;
  let local: { LXD_CONF: string; LXD_DIR: string };

  const certs = async () => (await h.db.query("SELECT fingerprint, name FROM certificates ORDER BY fingerprint")).rows.map((r) => `${r[0]}=${r[1]}`);
  const opStatus = async (id: string) => (await h.db.query("SELECT status_code FROM operations WHERE id = ?", [id])).rows[0]?.[0];
  const tokenOpId = async (name: string) => {
    const r = await h.db.query("SELECT id, metadata FROM operations WHERE class = 'token' ORDER BY created_at");
    return String(r.rows.find((row) => JSON.parse(String(row[1])).request.name === name)?.[0]);
  };
  const addToken = async (name: string): Promise<{ text: string; token: Token }> => {
    const r = await lxc(["config", "trust", "add", "--name", name], local);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Client ${name} certificate add token:$`, "m"));
    const text = r.stdout.trim().split("\n").pop()!;
    return { text, token: decodeToken(text) };
  };

  before(async () => {
    h = await startHarness("shoal-ops");
    local = { LXD_CONF: join(h.scratch, "local-conf"), LXD_DIR: h.dir };
  });
  after(async () => {
    await h?.close();
  });

  test("lxc config trust add prints an LXD token; list-tokens and operation list/show see it", async () => {
    const { text, token } = await addToken("alice");
    assert.equal(token.client_name, "alice");
    assert.equal(token.fingerprint, fingerprint(h.cluster.tls.cert));
    assert.deepEqual(token.addresses, [h.gateway.httpsAddress]);
    assert.match(token.secret, /^[0-9a-f]{64}$/);
    assert.equal(token.expires_at, "0001-01-01T00:00:00Z");

    const list = await lxc(["config", "trust", "list-tokens", "--format", "csv"], local);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^alice,${text.replace(/[+/=]/g, "\\$&")},`, "m"));

    const id = await tokenOpId("alice");
    const ops = await lxc(["operation", "list", "--format", "csv"], local);
    assert.equal(ops.code, 0, ops.stderr);
    // A clustered server: the client adds the LOCATION column (the gateway's server name).
    assert.match(ops.stdout, new RegExp(`^${id},TOKEN,Executing operation,RUNNING,YES,\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d UTC,shoal-ops$`, "m"));
    const show = await lxc(["operation", "show", id], local);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^id: ${id}$`, "m"));
    assert.match(show.stdout, /^class: token$/m);
    assert.match(show.stdout, /^status: Running$/m);
    assert.match(show.stdout, /^may_cancel: true$/m);
    assert.match(show.stdout, /^location: shoal-ops$/m);

    const missing = await lxc(["operation", "show", "00000000-0000-0000-0000-000000000000"], local);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /^Error: Operation not found$/m);
  });

  test("lxc remote add NAME TOKEN trusts the new client once; a reused token is refused and adds nothing", async () => {
    const { text } = await addToken("bob");
    const id = await tokenOpId("bob");
    const conf = { LXD_CONF: join(h.scratch, "bob-conf") };
    const add = await lxc(["remote", "add", "shoal", text], conf);
    assert.equal(add.code, 0, add.stderr);
    const fp = fingerprint(readFileSync(join(conf.LXD_CONF, "client.crt"), "utf8"));
    assert.ok((await certs()).includes(`${fp}=bob`));
    assert.equal(await opStatus(id), 200); // used: Success, no longer listed as a token
    const created = (await h.db.query("SELECT body FROM events WHERE type = 'lifecycle'")).rows.map((r) => JSON.parse(String(r[0])));
    const ev = created.find((e) => e.metadata.source === `/1.0/certificates/${fp}`);
    assert.equal(ev?.metadata.action, "certificate-created");
    assert.deepEqual(ev?.metadata.requestor, { username: fp, protocol: "tls", address: ev?.metadata.requestor.address });
    assert.equal(ev?.location, "shoal-ops");
    assert.doesNotMatch(String((await h.db.query("SELECT metadata FROM operations WHERE id = ?", [id])).rows[0][0]), /secret/);

    const info = await lxc(["info", "shoal:"], conf);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^auth: trusted$/m);
    const tokens = await lxc(["config", "trust", "list-tokens", "shoal:", "--format", "csv"], conf);
    assert.equal(tokens.code, 0, tokens.stderr);
    assert.doesNotMatch(tokens.stdout, /^bob,/m);

    const before = await certs();
    const again = await lxc(["remote", "add", "shoal", text], { LXD_CONF: join(h.scratch, "reuse-conf") });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /not authorized: the trust token is unknown, already used or revoked/);
    assert.deepEqual(await certs(), before);
  });

  test("shoal trust add NAME prints a token that lxc remote add accepts", async () => {
    const shoal = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, ["--import", "tsx", "services/api/src/shoal.ts", ...args], { cwd: new URL("../..", import.meta.url).pathname, timeout: 30_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const r = await shoal(["trust", "add", "zoe", "--dir", h.dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Client zoe certificate add token:$/m);
    const text = r.stdout.trim().split("\n").pop()!;
    assert.equal(decodeToken(text).client_name, "zoe");
    const conf = { LXD_CONF: join(h.scratch, "zoe-conf") };
    const add = await lxc(["remote", "add", "shoal", text], conf);
    assert.equal(add.code, 0, add.stderr);
    assert.ok((await certs()).includes(`${fingerprint(readFileSync(join(conf.LXD_CONF, "client.crt"), "utf8"))}=zoe`));

    const missing = await shoal(["trust", "add", "zoe", "--dir", join(h.scratch, "nowhere")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no gateway at .*unix\.socket/);
  });

  test("two clients racing with one token: exactly one is trusted", async () => {
    const { text } = await addToken("race");
    const a = await generateCertificate({ commonName: "racer-a" });
    const b = await generateCertificate({ commonName: "racer-b" });
    const body = JSON.stringify({ type: "", name: "", password: text, token: false });
    const results = await Promise.all([a, b].map((c) => https(h.gateway.httpsAddress, "POST", "/1.0/certificates", { ...c, ca: h.cluster.tls.cert, body })));
    assert.deepEqual(results.map((r) => r.status).sort(), [201, 403]);
    const trusted = await certs();
    assert.equal([a, b].filter((c) => trusted.includes(`${fingerprint(c.cert)}=race`)).length, 1);
  });

  test("lxc config trust revoke-token: the token is cancelled and refused", async () => {
    const { text } = await addToken("carol");
    const id = await tokenOpId("carol");
    const revoke = await lxc(["config", "trust", "revoke-token", "carol"], local);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(await opStatus(id), 401);
    const list = await lxc(["config", "trust", "list-tokens", "--format", "csv"], local);
    assert.doesNotMatch(list.stdout, /^carol,/m);

    const before = await certs();
    const r = await lxc(["remote", "add", "shoal", text], { LXD_CONF: join(h.scratch, "carol-conf") });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not authorized/);
    assert.deepEqual(await certs(), before);
  });

  test("lxc operation delete cancels a token operation; a finished one cannot be cancelled", async () => {
    await addToken("dave");
    const id = await tokenOpId("dave");
    const del = await lxc(["operation", "delete", id], local);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, new RegExp(`^Operation ${id} deleted$`, "m"));
    assert.equal(await opStatus(id), 401);
    const show = await lxc(["operation", "show", id], local);
    assert.match(show.stdout, /^status: Cancelled$/m);
    assert.doesNotMatch(show.stdout, /secret/);
    const again = await lxc(["operation", "delete", id], local);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /Only running operations can be cancelled/);
  });

  test("raw API: grouping by status, wait with a timeout, 404s, untrusted 403", async () => {
    const conf = join(h.scratch, "bob-conf");
    const client = { cert: readFileSync(join(conf, "client.crt"), "utf8"), key: readFileSync(join(conf, "client.key"), "utf8"), ca: h.cluster.tls.cert };
    const req = (method: string, path: string, body?: string) => https(h.gateway.httpsAddress, method, path, { ...client, body });

    const created = await req("POST", "/1.0/certificates", JSON.stringify({ type: "client", name: "erin", token: true }));
    assert.equal(created.status, 202);
    assert.equal(created.body.type, "async");
    assert.equal(created.body.status_code, 100);
    const id = created.body.metadata.id as string;
    assert.equal(created.body.operation, `/1.0/operations/${id}`);
    assert.equal(created.headers.location, `/1.0/operations/${id}`);
    assert.match(created.body.metadata.metadata.secret, /^[0-9a-f]{64}$/);

    const list0 = await req("GET", "/1.0/operations");
    assert.ok(list0.body.metadata.running.includes(`/1.0/operations/${id}`));
    assert.ok(list0.body.metadata.cancelled.length >= 1);
    assert.ok(list0.body.metadata.success.length >= 1);
    const list1 = await req("GET", "/1.0/operations?recursion=1");
    assert.equal(list1.body.metadata.running.find((o: { id: string }) => o.id === id).class, "token");

    const t0 = Date.now();
    const waited = await req("GET", `/1.0/operations/${id}/wait?timeout=1`);
    assert.equal(waited.status, 200);
    assert.equal(waited.body.metadata.status, "Running");
    assert.ok(Date.now() - t0 >= 900, "wait honours its timeout");

    const waiting = req("GET", `/1.0/operations/${id}/wait?timeout=30`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await req("DELETE", `/1.0/operations/${id}`)).status, 200);
    const done = await waiting;
    assert.equal(done.body.metadata.status, "Cancelled");
    assert.equal(done.body.metadata.status_code, 401);

    assert.equal((await req("GET", `/1.0/operations/${id}/websocket`)).body.error, "Only websocket operations can be connected");
    assert.equal((await req("GET", "/1.0/operations/00000000-0000-0000-0000-000000000000")).status, 404);
    assert.equal((await req("DELETE", "/1.0/operations/nope")).body.error, "Operation not found");
    assert.equal((await req("GET", `/1.0/operations/${id}/wait?timeout=x`)).status, 400);
    const stranger = await https(h.gateway.httpsAddress, "GET", "/1.0/operations", { ca: h.cluster.tls.cert });
    assert.equal(stranger.status, 403);
    const untrustedToken = await https(h.gateway.httpsAddress, "POST", "/1.0/certificates", { ca: h.cluster.tls.cert, body: JSON.stringify({ name: "x", token: true }) });
    assert.equal(untrustedToken.status, 403);
    // Secrets never reach the event stream.
    const events = (await h.db.query("SELECT body FROM events")).rows.map((r) => String(r[0]));
    assert.ok(events.some((b) => b.includes('"class":"token"')));
    assert.ok(!events.some((b) => /"secret"/.test(b)));
  });

  describe("lxc monitor", () => {
    let second: Gateway;
    let secondDir: string;

    before(async () => {
      // A second gateway on the same database: events must reach its listeners too.
      secondDir = mkdtempSync(join(tmpdir(), "shoal-api2-"));
      second = await startGateway({ db: h.db, dir: secondDir, listen: "127.0.0.1:0", cert: h.cluster.tls.cert, key: h.cluster.tls.key, serverName: "shoal-two" });
    });
    after(async () => {
      await second?.close();
      rmSync(secondDir, { recursive: true, force: true });
    });

    test("lxc monitor --type=lifecycle (HTTPS remote) receives config-updated from another client; not operation events", async () => {
      const m = monitor(["shoal:", "--type=lifecycle"], { LXD_CONF: join(h.scratch, "bob-conf") });
      try {
        await until("the monitor to connect", () => h.gateway.eventListeners() === 1);
        await addToken("frank"); // an operation event, filtered out by --type=lifecycle
        const set = await lxc(["config", "set", "core.trust_password", "monitor-pass"], local);
        assert.equal(set.code, 0, set.stderr);
        await until("the lifecycle event", () => /action: config-updated/.test(m.output()));
        const out = m.output();
        assert.match(out, /^type: lifecycle$/m);
        assert.match(out, /^location: shoal-ops$/m);
        assert.match(out, /^\s+source: \/1\.0$/m);
        assert.match(out, /^\s+protocol: unix$/m);
        assert.doesNotMatch(out, /type: operation/);
      } finally {
        m.stop();
      }
      await until("the listener to go", () => h.gateway.eventListeners() === 0);
    });

    test("a monitor on another gateway receives events of a change made through the first", async () => {
      const m = monitor(["--type=lifecycle", "--type=operation"], { LXD_CONF: join(h.scratch, "two-conf"), LXD_DIR: secondDir });
      try {
        await until("the monitor to connect", () => second.eventListeners() === 1);
        const set = await lxc(["config", "unset", "core.trust_password"], local);
        assert.equal(set.code, 0, set.stderr);
        await addToken("grace");
        await until("both events", () => /action: config-updated/.test(m.output()) && /class: token/.test(m.output())).catch((e: Error) => {
          throw new Error(`${e.message}; the monitor printed: ${m.output()}`);
        });
        assert.match(m.output(), /^location: shoal-ops$/m); // published by the first gateway
        assert.doesNotMatch(m.output(), /secret/);
      } finally {
        m.stop();
      }
    });

    test("an untrusted client cannot listen; an unknown type is refused", async () => {
      const stranger = await https(h.gateway.httpsAddress, "GET", "/1.0/events", { ca: h.cluster.tls.cert, headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" } });
      assert.equal(stranger.status, 403);
      assert.equal(stranger.body.error, "not authorized");
      const conf = join(h.scratch, "bob-conf");
      const client = { cert: readFileSync(join(conf, "client.crt"), "utf8"), key: readFileSync(join(conf, "client.key"), "utf8"), ca: h.cluster.tls.cert };
      const bad = await https(h.gateway.httpsAddress, "GET", "/1.0/events?type=bogus", { ...client, headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" } });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /bogus/);
    });
  });
});
