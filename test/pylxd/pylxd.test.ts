// pylxd (Debian's python3-pylxd 2.2) against a Shoal cluster: the Python client
// library operators script LXD with. Over the unix socket (full trust) and over
// HTTPS with a client certificate trusted by password.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateCertificate } from "../../services/raft/src/transport/certificate.ts";
import { TestCluster } from "../cluster/support.ts";

const PYTHON = "/usr/bin/python3";
const havePylxd = existsSync(PYTHON) && existsSync("/usr/lib/python3/dist-packages/pylxd");

describe("pylxd", { skip: havePylxd ? false : "python3-pylxd missing (apt-get install python3-pylxd)" }, () => {
  const c = new TestCluster();
  before(() => c.bootstrap("member1"));
  after(() => c.close());

  test("reads the server, projects, profiles and cluster members; authenticates by password", async () => {
    const client = await generateCertificate({ commonName: "pylxd", hosts: ["127.0.0.1"] });
    writeFileSync(join(c.dir, "pylxd.crt"), client.cert);
    writeFileSync(join(c.dir, "pylxd.key"), client.key);
    const https = JSON.parse((await c.lxc("query", "/1.0")).stdout).environment.addresses[0] as string;
    const out = await new Promise<string>((res, rej) =>
      execFile(
        PYTHON,
        [join(import.meta.dirname, "client.py"), join(c.env.LXD_DIR, "unix.socket"), `https://${https}`, join(c.dir, "pylxd.crt"), join(c.dir, "pylxd.key"), "py-s3cret", join(c.memberDir("member1"), "cluster.crt")],
        // A clean environment: REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set on some machines)
        // would replace the pinned server certificate.
        { timeout: 60_000, env: { PATH: process.env.PATH, HOME: c.dir } },
        (err, stdout, stderr) => (err ? rej(new Error(`${err.message}\n${stderr}`)) : res(stdout)),
      ),
    );
    const r = JSON.parse(out.trim().split("\n").pop()!);
    assert.equal(r.local_trusted, true);
    assert.equal(r.clustered, true);
    assert.equal(r.extensions, true);
    assert.deepEqual(r.projects, ["default"]);
    assert.deepEqual(r.profile_devices, { root: { path: "/", pool: "default", type: "disk" } });
    assert.equal(r.cluster_enabled, true);
    assert.deepEqual(r.members, [{ name: "member1", database: true, status: "Online", message: "Fully operational" }]);
    assert.match(r.member_url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(r.remote_trusted_before, false);
    assert.match(r.wrong_password, /not authorized/);
    assert.equal(r.remote_trusted_after, true);
    assert.equal(r.certificates, 1);
    assert.equal(r.missing_profile, "NotFound");
    assert.ok(readFileSync(join(c.dir, "pylxd.crt"), "utf8").includes("BEGIN CERTIFICATE"));
  });
});
