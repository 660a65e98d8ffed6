// Cluster membership with real processes and the real `lxc`: a cluster grows to five
// members by join tokens, its database roles converge (3 voters, 2 stand-bys, voters
// spread across failure domains), a killed voter goes OFFLINE and is replaced, comes
// back and is given a role again; tokens, rename, groups, roles, config and removal,
// with their error cases.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { LXC, lxc } from "../api/support.ts";
import { fingerprint, generateCertificate } from "../../services/raft/src/transport/certificate.ts";
import { TestCluster, waitUntil } from "./support.ts";

const voters = <T extends { roles: string[] }>(ms: T[]) => ms.filter((m) => m.roles.includes("database"));
const standbys = <T extends { roles: string[] }>(ms: T[]) => ms.filter((m) => m.roles.includes("database-standby"));

describe("cluster membership (real processes, real lxc)", { skip: existsSync(LXC) ? false : `${LXC} missing` }, () => {
  const c = new TestCluster();

  before(async () => {
    await c.bootstrap("member1");
    const r = await c.lxc("config", "set", "cluster.offline_threshold", "10");
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => c.close());

  test("grow to five members by join tokens: roles converge to 3 voters and 2 stand-bys", async () => {
    for (const name of ["member2", "member3", "member4", "member5"]) {
      const token = await c.token(name);
      const started = Date.now();
      await c.join(name, token);
      process.stdout.write(`# ${name}: token to ready in ${Date.now() - started} ms (includes process start)\n`);
    }
    let last: unknown;
    await waitUntil("3 voters and 2 stand-bys, all online", 20_000, async () => {
      const ms = await c.members();
      last = ms;
      return ms.length === 5 && voters(ms).length === 3 && standbys(ms).length === 2 && ms.every((m) => m.status === "Online");
    }).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(last)}`));
    const ms = await c.members();
    assert.equal(ms.filter((m) => m.roles.includes("database-leader")).length, 1);
    assert.deepEqual(ms.map((m) => m.server_name), ["member1", "member2", "member3", "member4", "member5"]);
  });

  test("with three failure domains, the three voters sit in three different domains", async () => {
    const domains: Record<string, string> = { member1: "rack1", member2: "rack1", member3: "rack1", member4: "rack2", member5: "rack3" };
    for (const [name, domain] of Object.entries(domains)) {
      const r = await c.lxc("query", "-X", "PATCH", "-d", JSON.stringify({ failure_domain: domain, groups: ["default"] }), `/1.0/cluster/members/${name}`);
      assert.equal(r.code, 0, r.stderr);
    }
    let last: unknown;
    await waitUntil("voters in rack1, rack2, rack3", 20_000, async () => {
      const ms = await c.members();
      last = ms.map((m) => [m.server_name, m.failure_domain, m.roles.join("+")]);
      const v = voters(ms);
      return v.length === 3 && new Set(v.map((m) => m.failure_domain)).size === 3 && standbys(ms).length === 2;
    }).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(last)}`));
    const csv = await c.lxc("cluster", "list", "--format", "csv");
    assert.match(csv.stdout, /^member4,https:\/\/127\.0\.0\.1:\d+,database,x86_64,rack2,,ONLINE,Fully operational$/m);
  });

  test("SIGKILL of a voter: OFFLINE within the threshold, a stand-by replaces it; back ONLINE after a restart", async () => {
    const before = await c.members();
    const victim = voters(before).find((m) => !m.roles.includes("database-leader"))!;
    c.kill(victim.server_name);
    const killedAt = Date.now();
    let last: unknown;
    await waitUntil(`${victim.server_name} OFFLINE and replaced`, 25_000, async () => {
      const ms = await c.members();
      last = ms.map((m) => [m.server_name, m.status, m.roles.join("+")]);
      const gone = ms.find((m) => m.server_name === victim.server_name)!;
      const onlineVoters = voters(ms).filter((m) => m.status === "Online");
      return gone.status === "Offline" && /^No heartbeat for \S+ \(/.test(gone.message) && onlineVoters.length === 3;
    }).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(last)}`));
    process.stdout.write(`# ${victim.server_name}: OFFLINE and replaced ${Date.now() - killedAt} ms after SIGKILL (threshold 10 s)\n`);
    // Writes still go through.
    assert.equal((await c.lxc("config", "set", "cluster.max_standby", "2")).code, 0);

    await c.resume(victim.server_name);
    await waitUntil(`${victim.server_name} ONLINE with a role again`, 25_000, async () => {
      const ms = await c.members();
      last = ms.map((m) => [m.server_name, m.status, m.roles.join("+")]);
      const back = ms.find((m) => m.server_name === victim.server_name)!;
      return back.status === "Online" && back.roles.length > 0 && voters(ms).length === 3 && standbys(ms).length === 2;
    }).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(last)}`));
  });

  test("graceful stop (SIGTERM) of a voter hands its vote over first", async () => {
    const ms = await c.members();
    const victim = voters(ms).find((m) => !m.roles.includes("database-leader"))!;
    const p = c.procs.get(victim.server_name)!;
    c.kill(victim.server_name, "SIGTERM");
    assert.equal(await p.exited, 0);
    assert.match(p.output(), new RegExp(`handover: ${victim.server_name}: voter -> spare`));
    // Right after it stopped, three voters serve (no waiting for the offline threshold).
    const after = await c.members();
    assert.equal(voters(after).filter((m) => m.server_name !== victim.server_name).length, 3, JSON.stringify(after.map((m) => [m.server_name, m.roles])));
    await c.resume(victim.server_name);
    await waitUntil(`${victim.server_name} a stand-by again`, 20_000, async () => standbys(await c.members()).some((m) => m.server_name === victim.server_name));
  });

  test("an expired join token is refused (cluster.join_token_expiry)", async () => {
    assert.match((await c.lxc("config", "set", "cluster.join_token_expiry", "soon")).stderr, /Invalid expiry expression/);
    assert.equal((await c.lxc("config", "set", "cluster.join_token_expiry", "1S")).code, 0);
    try {
      const token = await c.token("member9");
      await new Promise((r) => setTimeout(r, 1_500));
      // Refused as expired at redemption, or already cancelled by the coordinator's sweep.
      await assert.rejects(c.join("member9", token), /Token has expired|No matching cluster join operation found/);
      assert.doesNotMatch((await c.lxc("cluster", "list-tokens", "--format", "csv")).stdout, /member9/);
    } finally {
      assert.equal((await c.lxc("config", "unset", "cluster.join_token_expiry")).code, 0);
    }
  });

  test("join tokens: list, revoke; revoked, reused, mistyped and foreign tokens are refused", async () => {
    const token = await c.token("member6");
    const list = await c.lxc("cluster", "list-tokens", "--format", "csv");
    assert.match(list.stdout, /^member6,ey/m);
    assert.equal((await c.lxc("cluster", "revoke-token", "member6")).code, 0);
    assert.doesNotMatch((await c.lxc("cluster", "list-tokens", "--format", "csv")).stdout, /member6/);
    await assert.rejects(c.join("member6", token), /No matching cluster join operation found/);

    // A used token cannot be used again, even under another directory.
    const fresh = await c.token("member7");
    await c.join("member7", fresh);
    await assert.rejects(c.spawn("member7-again", ["member", "--dir", `${c.dir}/again`, "--join", fresh, "--listen", "127.0.0.1:1"], /^ready /m), /No matching cluster join operation found/);

    // A token whose fingerprint is not the cluster's: nothing is sent.
    const t = JSON.parse(Buffer.from(await c.token("member8"), "base64").toString());
    t.fingerprint = "0".repeat(64);
    await assert.rejects(c.join("member8", Buffer.from(JSON.stringify(t)).toString("base64")), /Certificate fingerprint mismatch/);
    assert.ok(!existsSync(`${c.memberDir("member8")}/member.json`));

    // An address a member already uses; a member-specific key the cluster does not ask for.
    const taken = await c.token("member11");
    await assert.rejects(
      c.spawn("member11-taken", ["member", "--dir", `${c.dir}/taken`, "--join", taken, "--listen", c.addresses.get("member2")!], /^ready /m),
      /already has a member with address/,
    );
    const sized = await c.token("member12");
    await assert.rejects(
      c.spawn("member12", ["member", "--dir", c.memberDir("member12"), "--join", sized, "--listen", "127.0.0.1:1", "--member-config", "storage-pool.default.size=1GiB"], /^ready /m),
      /has no member-specific key "size"/,
    );

    // A token for a name that is a member already.
    const dup = await c.lxc("cluster", "add", "member2");
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already has a member with name: member2/);
    const bad = await c.lxc("cluster", "add", "no_underscores");
    assert.match(bad.stderr, /Invalid cluster member name/);
  });

  test("rename, config, roles and their errors", async () => {
    assert.match((await c.lxc("cluster", "rename", "member7", "seven")).stdout, /renamed to seven/);
    assert.equal((await c.lxc("cluster", "set", "seven", "scheduler.instance=manual")).code, 0);
    assert.equal((await c.lxc("cluster", "get", "seven", "scheduler.instance")).stdout.trim(), "manual");
    assert.match((await c.lxc("cluster", "set", "seven", "bogus=1")).stderr, /Invalid cluster configuration key "bogus"/);
    assert.match((await c.lxc("cluster", "set", "seven", "scheduler.instance=sometimes")).stderr, /Invalid cluster configuration key "scheduler.instance" value/);
    assert.equal((await c.lxc("cluster", "role", "add", "seven", "event-hub")).code, 0);
    const shown = await c.lxc("cluster", "show", "seven");
    assert.match(shown.stdout, /^- event-hub$/m);
    assert.match((await c.lxc("cluster", "role", "add", "seven", "database")).stderr, /The "database" role cannot be added at this time/);
    assert.match((await c.lxc("cluster", "role", "add", "seven", "chef")).stderr, /Invalid cluster role "chef"/);
    assert.equal((await c.lxc("cluster", "role", "remove", "seven", "event-hub")).code, 0);
    assert.match((await c.lxc("cluster", "rename", "seven", "member1")).stderr, /already has a member with name: member1/);
    assert.match((await c.lxc("cluster", "show", "nosuch")).stderr, /Cluster member not found/);
    assert.match((await c.lxc("config", "set", "cluster.max_voters", "4")).stderr, /Value must be an odd number equal to or higher than 3/);
    assert.match((await c.lxc("config", "set", "cluster.max_standby", "6")).stderr, /Value must be between 0 and 5/);
    assert.match((await c.lxc("config", "set", "cluster.offline_threshold", "5")).stderr, /Value must be greater than '10'/);
  });

  test("cluster groups: create, assign, list, rename, delete (only when empty)", async () => {
    assert.equal((await c.lxc("cluster", "group", "create", "g1")).code, 0);
    assert.equal((await c.lxc("cluster", "group", "assign", "seven", "default,g1")).code, 0);
    const list = await c.lxc("cluster", "group", "list", "--format", "csv");
    assert.match(list.stdout, /^g1,,1$/m);
    assert.match(list.stdout, /^default,Default cluster group,6$/m);
    assert.match((await c.lxc("cluster", "group", "delete", "g1")).stderr, /Only empty cluster groups can be removed/);
    assert.match((await c.lxc("cluster", "group", "delete", "default")).stderr, /cannot be deleted/);
    assert.match((await c.lxc("cluster", "group", "assign", "seven", "nosuch")).stderr, /Cluster group "nosuch" doesn't exist/);
    assert.equal((await c.lxc("cluster", "group", "rename", "g1", "g2")).code, 0);
    assert.match((await c.lxc("cluster", "show", "seven")).stdout, /^- g2$/m);
    assert.equal((await c.lxc("cluster", "group", "assign", "seven", "default")).code, 0);
    assert.equal((await c.lxc("cluster", "group", "delete", "g2")).code, 0);
  });

  test("remove: the member leaves (its process stops), a lowered max_standby applies at once", async () => {
    const seven = c.procs.get("member7")!;
    // (--force would ask for a confirmation on stdin; seven holds no instances.)
    const r = await c.lxc("cluster", "remove", "seven");
    assert.equal(r.code, 0, r.stderr);
    await waitUntil("the removed member's process to exit", 15_000, () => seven.proc.exitCode !== null);
    assert.ok(readdirSync(c.memberDir("member7")).some((f) => f.startsWith("member.json.removed-")));
    const ms = await c.members();
    assert.ok(!ms.some((m) => m.server_name === "seven"));
    assert.match((await c.lxc("cluster", "remove", "nosuch")).stderr, /Cluster member not found/);

    assert.equal((await c.lxc("config", "set", "cluster.max_standby", "1")).code, 0);
    await waitUntil("one stand-by", 15_000, async () => standbys(await c.members()).length === 1);
  });

  test("update-certificate: every member and gateway switches without a restart; clients and joins keep working", async () => {
    const fresh = await generateCertificate({ commonName: "shoal-rotated", hosts: ["127.0.0.1", "::1", "localhost"] });
    writeFileSync(join(c.dir, "new.crt"), fresh.cert);
    writeFileSync(join(c.dir, "new.key"), fresh.key);
    // An HTTPS client, trusted by token before the rotation.
    const remote = { LXD_CONF: join(c.dir, "remote-client") };
    const token = (await c.lxc("config", "trust", "add", "--name", "rotation-client")).stdout.trim().split("\n").pop()!;
    assert.equal((await lxc(["remote", "add", "shoal", token], remote)).code, 0);

    const bad = await lxc(["cluster", "update-certificate", "shoal:", join(c.dir, "new.crt"), join(c.dir, "new.crt")], remote);
    assert.match(bad.stderr, /key does not match|not a PEM|key/i);
    const r = await lxc(["cluster", "update-certificate", "shoal:", join(c.dir, "new.crt"), join(c.dir, "new.key")], remote);
    assert.equal(r.code, 0, r.stderr);

    const want = fingerprint(fresh.cert);
    await waitUntil("the gateway to present the new certificate", 15_000, async () => {
      const info = await c.lxc("query", "/1.0");
      return info.code === 0 && JSON.parse(info.stdout).environment.certificate_fingerprint === want;
    });
    // The client that asked keeps working (it stored the new certificate), and so do
    // the members: heartbeats and database traffic run over the rotated mTLS.
    const info = await lxc(["info", "shoal:"], remote);
    assert.equal(info.code, 0, info.stderr);
    await new Promise((res) => setTimeout(res, 3_000));
    const ms = await c.members();
    assert.ok(ms.every((m) => m.status === "Online"), JSON.stringify(ms.map((m) => [m.server_name, m.status])));
    assert.equal((await c.lxc("config", "set", "cluster.max_standby", "1")).code, 0);
    for (const name of ["member1", "member2"]) assert.equal(readFileSync(join(c.memberDir(name), "cluster.crt"), "utf8"), fresh.cert);

    // A member restarted afterwards comes back with the new certificate; a new member
    // joins with a token carrying the new fingerprint.
    const p = c.procs.get("member3")!;
    c.kill("member3", "SIGTERM");
    await p.exited;
    await c.resume("member3");
    const joinToken = await c.token("member10");
    assert.equal(JSON.parse(Buffer.from(joinToken, "base64").toString()).fingerprint, want);
    await c.join("member10", joinToken);
    await waitUntil("member3 and member10 online", 20_000, async () => {
      const now = await c.members();
      return ["member3", "member10"].every((n) => now.find((m) => m.server_name === n)?.status === "Online");
    });
  });
});
