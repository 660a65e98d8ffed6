// Acceptance: projects, the default profile, storage pool and network listings with
// the real `lxc` 5.0.2 client (over the unix socket and over HTTPS), and raw HTTPS for
// malformed bodies and stale ETags. After each refusal, nothing changed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { https, LXC, lxc, startHarness, type Harness } from "./support.ts";

describe("projects, profiles, storage pools and networks with the real lxc client", { skip: existsSync(LXC) ? false : `${LXC} missing (apt-get install lxd-client)` }, () => {
  let h: Harness;
  let local: { LXD_CONF: string; LXD_DIR: string };
  let remoteConf: { LXD_CONF: string };
  let client: { cert: string; key: string; ca: string };

  const projects = async () => (await h.db.query("SELECT name, description, config FROM projects ORDER BY name")).rows.map((r) => r.map(String).join("|"));
  const profiles = async () => (await h.db.query("SELECT project, name, description, config, devices FROM profiles ORDER BY project, name")).rows.map((r) => r.map(String).join("|"));
  const lifecycle = async () => (await h.db.query("SELECT body FROM events WHERE type = 'lifecycle' ORDER BY seq")).rows.map((r) => JSON.parse(String(r[0])).metadata);
  const ok = async (args: string[], env: { LXD_CONF: string; LXD_DIR?: string } = local) => {
    const r = await lxc(args, env);
    assert.equal(r.code, 0, `lxc ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const refused = async (args: string[], message: RegExp, env: { LXD_CONF: string; LXD_DIR?: string } = local) => {
    const r = await lxc(args, env);
    assert.notEqual(r.code, 0, `lxc ${args.join(" ")} should fail`);
    assert.match(r.stderr, message);
  };

  /** `lxc … edit` with the YAML on stdin (asynchronous: the gateway runs in this process). */
  const edit = (args: string[], yaml: string) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      const env = { PATH: process.env.PATH, HOME: local.LXD_CONF, LXD_CONF: local.LXD_CONF, LXD_DIR: h.dir, LANG: "C" };
      const child = execFile(LXC, args, { env, timeout: 30_000, killSignal: "SIGKILL" }, (err, _out, stderr) => resolve({ code: err ? 1 : 0, stderr }));
      child.stdin?.end(yaml);
    });

  before(async () => {
    h = await startHarness("shoal-projects");
    local = { LXD_CONF: join(h.scratch, "local-conf"), LXD_DIR: h.dir };
    remoteConf = { LXD_CONF: join(h.scratch, "remote-conf") };
    // A remote over HTTPS (added while `default` is the only project).
    await ok(["config", "set", "core.trust_password", "pw"]);
    await ok(["remote", "add", "shoal", `https://${h.gateway.httpsAddress}`, "--password", "pw", "--accept-certificate"], remoteConf);
    client = {
      cert: readFileSync(join(remoteConf.LXD_CONF, "client.crt"), "utf8"),
      key: readFileSync(join(remoteConf.LXD_CONF, "client.key"), "utf8"),
      ca: h.cluster.tls.cert,
    };
  });
  after(async () => {
    await h?.close();
  });

  test("GET /1.0 advertises projects, storage and network; the default project has LXD's features", async () => {
    const r = await https(h.gateway.httpsAddress, "GET", "/1.0", client);
    for (const ext of ["projects", "storage", "network"]) assert.ok(r.body.metadata.api_extensions.includes(ext), ext);
    const show = await ok(["project", "show", "shoal:default"], remoteConf);
    for (const f of ["images", "networks", "profiles", "storage.volumes"]) assert.match(show, new RegExp(`^  features\\.${f.replace(".", "\\.")}: "true"$`, "m"));
    assert.match(show, /^description: Default LXD project$/m);
    assert.match(show, /^- \/1\.0\/profiles\/default$/m);
    const list = await ok(["project", "list", "shoal:", "--format", "csv"], remoteConf);
    assert.equal(list.trim(), "default (current),YES,YES,YES,YES,Default LXD project,1");
    const info = await ok(["info", "shoal:"], remoteConf); // existing commands keep working with ?project=
    assert.match(info, /^auth: trusted$/m);
  });

  test("lxc project create / list / show / set / get / unset / rename / delete, each with a lifecycle event", async () => {
    assert.match(await ok(["project", "create", "web", "-c", "features.images=false"]), /Project web created/);
    assert.match(await ok(["project", "show", "web"]), /^  features\.images: "false"$/m);
    assert.match(await ok(["project", "list", "--format", "csv"]), /^web,NO,YES,YES,NO,,1$/m);

    await ok(["project", "set", "web", "restricted", "true"]);
    await ok(["project", "set", "web", "restricted.cluster.target", "block"]);
    assert.equal((await ok(["project", "get", "web", "restricted.cluster.target"])).trim(), "block");
    await ok(["project", "unset", "web", "restricted.cluster.target"]);
    assert.equal((await ok(["project", "get", "web", "restricted.cluster.target"])).trim(), "");
    assert.match(await ok(["profile", "show", "default", "--project", "web"]), /^description: Default LXD profile for project web$/m);

    const edited = await edit(["project", "edit", "web"], 'description: the web\nconfig:\n  features.images: "false"\n  restricted: "true"\n  limits.instances: "5"\n');
    assert.equal(edited.code, 0, edited.stderr);
    const shown = await ok(["project", "show", "web"]);
    assert.match(shown, /^description: the web$/m);
    assert.match(shown, /^  limits\.instances: "5"$/m);
    const badEdit = await edit(["project", "edit", "web"], 'config:\n  bogus: "1"\n');
    assert.notEqual(badEdit.code, 0);
    assert.match(badEdit.stderr, /Invalid project configuration key "bogus"/);
    assert.equal(await ok(["project", "show", "web"]), shown);

    assert.match(await ok(["project", "rename", "web", "site"]), /Project web renamed to site/);
    await refused(["project", "show", "web"], /^Error: Project not found$/m);
    assert.match(await ok(["project", "show", "site"]), /^  restricted: "true"$/m);
    assert.match(await ok(["project", "delete", "site"]), /Project site deleted/);
    assert.deepEqual((await projects()).map((p) => p.split("|")[0]), ["default"]);
    assert.deepEqual((await profiles()).map((p) => p.split("|")[0]), ["default"]);

    const actions = (await lifecycle()).map((m) => `${m.action} ${m.source}`);
    for (const want of ["project-created /1.0/projects/web", "project-updated /1.0/projects/web", "project-renamed /1.0/projects/site", "project-deleted /1.0/projects/site"]) {
      assert.ok(actions.includes(want), `${want} in ${actions.join(", ")}`);
    }
  });

  test("refusals name the problem and change nothing", async () => {
    await ok(["project", "create", "keep"]);
    const p0 = await projects();
    const e0 = (await lifecycle()).length;
    await refused(["project", "create", "keep"], /already exists/);
    await refused(["project", "create", "bad name"], /^Error: Project names may not contain spaces$/m);
    await refused(["project", "create", "a_b"], /^Error: Project names may not contain underscores$/m);
    await refused(["project", "set", "keep", "foo.bar", "1"], /^Error: Invalid project configuration key "foo\.bar"$/m);
    await refused(["project", "set", "keep", "restricted", "maybe"], /Invalid value for project configuration key "restricted": Invalid value for a boolean "maybe"/);
    await refused(["project", "set", "keep", "restricted.cluster.target", "sometimes"], /"restricted\.cluster\.target"/);
    await refused(["project", "delete", "default"], /^Error: The 'default' project cannot be deleted$/m);
    await refused(["project", "rename", "default", "other"], /^Error: The 'default' project cannot be renamed$/m);
    await refused(["project", "set", "default", "features.images", "false"], /You can't change the features of the default project/);
    await refused(["project", "show", "nope"], /^Error: Project not found$/m);
    await refused(["project", "delete", "nope"], /^Error: Project not found$/m);
    await refused(["profile", "list", "--project", "nope"], /^Error: Project not found$/m);
    await refused(["network", "list", "--project", "nope"], /^Error: Project not found$/m);
    assert.deepEqual(await projects(), p0);
    assert.equal((await lifecycle()).length, e0);
  });

  test("raw HTTPS: malformed bodies, wrong types and stale ETags are refused, nothing changes", async () => {
    const p0 = await projects();
    const pr0 = await profiles();
    const send = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
      https(h.gateway.httpsAddress, method, path, { ...client, body: typeof body === "string" ? body : JSON.stringify(body), headers });

    for (const [method, path, body] of [
      ["POST", "/1.0/projects", "{not json"],
      ["POST", "/1.0/projects", { name: 7 }],
      ["POST", "/1.0/projects", { name: "" }],
      ["POST", "/1.0/projects", { name: "a/b" }],
      ["POST", "/1.0/projects", { name: "ok", config: { "features.images": true } }],
      ["POST", "/1.0/projects", { name: "ok", config: { "limits.instances": "many" } }],
      ["PUT", "/1.0/projects/keep", "[1,"],
      ["PATCH", "/1.0/projects/keep", { config: "x" }],
      ["PATCH", "/1.0/profiles/default", { devices: { eth0: { name: "eth0" } } }],
      ["PUT", "/1.0/profiles/default", { config: { "bogus.key": "1" } }],
    ] as const) {
      const r = await send(method, path, body);
      assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.type, "error");
      assert.equal(r.headers["x-content-type-options"], "nosniff");
    }

    const got = await send("GET", "/1.0/projects/keep");
    const etag = String(got.headers.etag);
    assert.equal((await send("PATCH", "/1.0/projects/keep", { description: "first" }, { "if-match": etag })).status, 200);
    const stale = await send("PATCH", "/1.0/projects/keep", { description: "second" }, { "if-match": etag });
    assert.equal(stale.status, 412);
    assert.match(stale.body.error, /ETag doesn't match/);
    assert.match(await ok(["project", "show", "keep"]), /^description: first$/m);

    const prof = await send("GET", "/1.0/profiles/default");
    assert.equal(prof.status, 200);
    const pe = String(prof.headers.etag);
    assert.equal((await send("PATCH", "/1.0/profiles/default", { config: { "user.a": "1" } }, { "if-match": pe })).status, 200);
    assert.equal((await send("PUT", "/1.0/profiles/default", { config: {}, devices: {} }, { "if-match": pe })).status, 412);
    assert.match(await ok(["profile", "show", "default"]), /^  user\.a: "1"$/m);

    assert.equal((await send("PATCH", "/1.0/projects/keep", { description: "" })).status, 200);
    assert.equal((await send("PATCH", "/1.0/profiles/default", { config: { "user.a": "" } })).status, 200);
    assert.equal((await send("PUT", "/1.0/profiles/default", { config: {}, description: "Default LXD profile", devices: { root: { path: "/", pool: "default", type: "disk" } } })).status, 200);
    assert.deepEqual(await projects(), p0);
    assert.deepEqual(await profiles(), pr0);
    const actions = (await lifecycle()).map((m) => `${m.action} ${m.source}`);
    assert.ok(actions.includes("profile-updated /1.0/profiles/default"));
  });

  test("lxc profile create / rename / delete; default refused; a project with a profile of its own is not empty", async () => {
    const pr0 = await profiles();
    assert.match(await ok(["profile", "create", "web"]), /Profile web created/);
    await ok(["profile", "set", "web", "limits.cpu", "2"]);
    await refused(["profile", "create", "web"], /^Error: The profile already exists$/m);
    await refused(["profile", "create", "a/b"], /^Error: Profile names may not contain slashes$/m);
    await refused(["profile", "delete", "default"], /^Error: The 'default' profile cannot be deleted$/m);
    await refused(["profile", "rename", "default", "other"], /^Error: The 'default' profile cannot be renamed$/m);
    assert.match(await ok(["profile", "rename", "web", "www"]), /Profile web renamed to www/);
    assert.match(await ok(["profile", "show", "www"]), /^  limits\.cpu: "2"$/m);
    await refused(["profile", "show", "web"], /^Error: Profile not found$/m);
    assert.match(await ok(["profile", "delete", "www"]), /Profile www deleted/);
    assert.deepEqual(await profiles(), pr0);

    await ok(["project", "create", "busy"]);
    await ok(["profile", "create", "extra", "--project", "busy"]);
    await refused(["project", "delete", "busy"], /^Error: Only empty projects can be removed$/m);
    assert.ok((await projects()).some((p) => p.startsWith("busy|")));
    await ok(["profile", "delete", "extra", "--project", "busy"]);
    await ok(["project", "delete", "busy"]);
    assert.ok(!(await projects()).some((p) => p.startsWith("busy|")));

    const actions = (await lifecycle()).map((m) => `${m.action} ${m.source}`);
    for (const want of ["profile-created /1.0/profiles/web", "profile-renamed /1.0/profiles/www", "profile-deleted /1.0/profiles/www"]) assert.ok(actions.includes(want), want);
  });

  test("lxc profile list / show default / set, storage list / show, network list / show", async () => {
    assert.match(await ok(["profile", "list", "shoal:", "--format", "csv"], remoteConf), /^default,Default LXD profile,0$/m);
    const show = await ok(["profile", "show", "shoal:default"], remoteConf);
    assert.match(show, /^  root:\n    path: \/\n    pool: default\n    type: disk$/m);
    await ok(["profile", "set", "shoal:default", "user.note", "hello"], remoteConf);
    assert.equal((await ok(["profile", "get", "shoal:default", "user.note"], remoteConf)).trim(), "hello");
    await ok(["profile", "unset", "shoal:default", "user.note"], remoteConf);
    await refused(["profile", "show", "shoal:nope"], /^Error: Profile not found$/m, remoteConf);

    // A clustered server: the client leaves out the SOURCE column (it is per member).
    assert.equal((await ok(["storage", "list", "shoal:", "--format", "csv"], remoteConf)).trim(), "default,dir,,1,CREATED");
    assert.match(await ok(["storage", "show", "shoal:default"], remoteConf), /^status: Created$/m);
    assert.match(await ok(["storage", "show", "shoal:default", "--target", "shoal-projects"], remoteConf), /^  source: /m);
    await refused(["storage", "show", "shoal:nope"], /^Error: Storage pool not found$/m, remoteConf);

    const nets = await ok(["network", "list", "shoal:", "--format", "csv"], remoteConf);
    for (const line of nets.trim().split("\n").filter(Boolean)) assert.match(line, /^[^,]+,[a-z]+,NO,/);
    assert.match(await ok(["network", "show", "shoal:lo"], remoteConf), /^managed: false$/m);
    await refused(["network", "show", "shoal:nope"], /^Error: Network not found$/m, remoteConf);
  });
});
