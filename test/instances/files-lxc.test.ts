// `lxc file push|pull|delete|edit` with the real lxc 5.0.2 against a cluster of two
// members running real containers (`shoal member` with the lxc driver, `shoal
// gateway`): the owning member's agent reads and writes the rootfs itself, so a
// running and a stopped instance both work; owners and modes as the client asks
// (shifted into the unprivileged id map); files byte-identical both ways (also
// 1.5 MiB of random bytes, over the gateway's JSON body limit); directories (-r,
// -p); symlinks; and the errors: a missing file, an unknown instance, a symlink
// that leads out of the rootfs (refused, nothing read or written on the host).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { LXC } from "../api/support.ts";
import { containerSuite } from "./support.ts";
import { lxcSkipReason } from "../../services/member/test/support/env.ts";

const skip = !existsSync(LXC) ? `${LXC} missing` : await lxcSkipReason();

/** A raw request to the gateway's unix socket (what lxc cannot show: HEAD, a JSON content type). */
function raw(socketPath: string, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("lxc file push|pull|delete|edit (real processes, real containers, real lxc)", { skip: skip ?? false }, () => {
  const s = containerSuite(["member1", "member2"], { importImage: true });
  const { c, created, ok, fails } = s;
  const local = mkdtempSync(join(tmpdir(), "shoal-files-"));
  after(() => rmSync(local, { recursive: true, force: true }));
  const exec = (name: string, script: string) => ok("exec", name, "--", "sh", "-c", script);
  const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

  test("a running instance on another member: push a file (owner and mode of the local file), cat and stat it inside", async () => {
    created.add("f1");
    await ok("launch", "bb", "f1", "--target", "member2");
    const src = join(local, "hello.txt");
    writeFileSync(src, "hello from the client\n");
    chmodSync(src, 0o640);
    await ok("file", "push", src, "f1/root/hello.txt");
    assert.equal(await exec("f1", "cat /root/hello.txt"), "hello from the client\n");
    // The test runs as root: the local owner is 0, which is the container's root (host uid 1000000).
    assert.equal((await exec("f1", "stat -c '%u %g %a' /root/hello.txt")).trim(), "0 0 640");
    const onHost = statSync(join(c.memberDir("member2"), "agent/pools/default/containers/f1/rootfs/root/hello.txt"));
    assert.equal(onHost.uid, 1_000_000);
  });

  test("--uid/--gid/--mode are honoured; a trailing / pushes into the directory", async () => {
    const src = join(local, "owned.txt");
    writeFileSync(src, "owned\n");
    await ok("file", "push", "--uid", "1000", "--gid", "1001", "--mode", "0600", src, "f1/tmp/");
    assert.equal((await exec("f1", "stat -c '%u %g %a' /tmp/owned.txt")).trim(), "1000 1001 600");
    assert.equal(await exec("f1", "cat /tmp/owned.txt"), "owned\n");
  });

  test("pull gives the same bytes back (mode kept); 1.5 MiB of random bytes both ways", async () => {
    const out = join(local, "pulled");
    mkdirSync(out);
    await ok("file", "pull", "f1/root/hello.txt", `${out}/`);
    assert.equal(readFileSync(join(out, "hello.txt"), "utf8"), "hello from the client\n");
    assert.equal(statSync(join(out, "hello.txt")).mode & 0o777, 0o640);

    const blob = randomBytes(1536 << 10);
    writeFileSync(join(local, "blob.bin"), blob);
    await ok("file", "push", join(local, "blob.bin"), "f1/root/blob.bin");
    assert.equal((await exec("f1", "sha256sum /root/blob.bin")).split(" ")[0], sha256(blob));
    await ok("file", "pull", "f1/root/blob.bin", join(out, "blob.bin"));
    assert.ok(readFileSync(join(out, "blob.bin")).equals(blob), "the pulled file differs from the pushed one");
  });

  test("a STOPPED instance: push while stopped, pull while stopped, then start it and read the file inside", async () => {
    created.add("f2");
    await ok("init", "bb", "f2", "--target", "member1");
    const src = join(local, "offline.txt");
    writeFileSync(src, "written while stopped\n");
    await ok("file", "push", "--mode", "0644", src, "f2/root/offline.txt");
    const back = join(local, "offline-back.txt");
    await ok("file", "pull", "f2/etc/hello.txt", back);
    assert.equal(readFileSync(back, "utf8"), "hello from busybox\n");
    await ok("start", "f2");
    assert.equal(await exec("f2", "cat /root/offline.txt"), "written while stopped\n");
    assert.equal((await exec("f2", "stat -c '%u %g %a' /root/offline.txt")).trim(), "0 0 644");
  });

  test("directories: the listing, pull -r, push -r (files, subdirectories, symlinks), push -p", async () => {
    const listing = JSON.parse(await ok("query", "/1.0/instances/f1/files?path=/etc"));
    assert.ok(listing.includes("hello.txt") && listing.includes("passwd"), JSON.stringify(listing));
    assert.match(await fails("file", "pull", "f1/etc", join(local, "etc-no-r")), /Can't pull a directory without --recursive/);

    const out = join(local, "tree-out");
    await ok("file", "pull", "-r", "f1/etc", out);
    assert.equal(readFileSync(join(out, "etc/hello.txt"), "utf8"), "hello from busybox\n");

    const tree = join(local, "tree");
    mkdirSync(join(tree, "sub"), { recursive: true });
    writeFileSync(join(tree, "top.txt"), "top\n");
    writeFileSync(join(tree, "sub/inner.txt"), "inner\n");
    symlinkSync("sub/inner.txt", join(tree, "link"));
    await ok("file", "push", "-r", tree, "f1/root/");
    assert.equal(await exec("f1", "cat /root/tree/top.txt /root/tree/sub/inner.txt"), "top\ninner\n");
    assert.equal((await exec("f1", "readlink /root/tree/link")).trim(), "sub/inner.txt");
    assert.equal(await exec("f1", "cat /root/tree/link"), "inner\n");

    await ok("file", "push", "-p", join(local, "hello.txt"), "f1/root/a/b/c/deep.txt");
    assert.equal(await exec("f1", "cat /root/a/b/c/deep.txt"), "hello from the client\n");
    assert.equal((await exec("f1", "stat -c '%F %u' /root/a/b")).trim(), "directory 0");

    // A symlink pulled as itself.
    await ok("file", "pull", "f1/bin/sh", join(local, "sh"));
    assert.ok(lstatSync(join(local, "sh")).isSymbolicLink());
    assert.equal(readlinkSync(join(local, "sh")), "/bin/busybox");
  });

  test("lxc file edit from a non-terminal stdin writes the file", async () => {
    // stdin from a file: the client opens /dev/stdin, which a socket (node's pipes) cannot be.
    const input = join(local, "edit-input.txt");
    writeFileSync(input, "edited text\n");
    const fd = openSync(input, "r");
    try {
      const child = spawn(LXC, ["file", "edit", "f1/root/edit.txt"], { env: { PATH: process.env.PATH, HOME: c.env.LXD_CONF, LANG: "C", ...c.env }, stdio: [fd, "ignore", "pipe"] });
      let stderr = "";
      child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
      const [code] = (await once(child, "exit")) as [number];
      assert.equal(code, 0, stderr);
    } finally {
      closeSync(fd);
    }
    assert.equal(await exec("f1", "cat /root/edit.txt"), "edited text\n");
  });

  test("lxc file delete: a file, then the same again (Not Found)", async () => {
    await ok("file", "delete", "f1/root/hello.txt");
    assert.equal(await exec("f1", "test -e /root/hello.txt && echo present || echo gone"), "gone\n");
    assert.match(await fails("file", "delete", "f1/root/hello.txt"), /Not Found/);
  });

  test("HEAD answers the headers alone; a raw upload with a JSON content type over the body limit is still a file", async () => {
    const socket = join(c.env.LXD_DIR, "unix.socket");
    const head = await raw(socket, "HEAD", "/1.0/instances/f1/files?path=/etc/hello.txt");
    assert.equal(head.status, 200);
    assert.deepEqual([head.headers["x-lxd-type"], head.headers["x-lxd-uid"], head.headers["x-lxd-mode"]], ["file", "0", "0644"]);
    assert.equal(head.body.length, 0);
    const big = Buffer.alloc(2 << 20, "{");
    const post = await raw(socket, "POST", "/1.0/instances/f1/files?path=/root/big.json", big, { "content-type": "application/json", "x-lxd-type": "file" });
    assert.equal(post.status, 200, post.body.toString());
    assert.equal((await exec("f1", "wc -c < /root/big.json")).trim(), String(big.length));
    const rel = await raw(socket, "GET", "/1.0/instances/f1/files?path=etc/hostname");
    assert.equal(rel.body.toString(), "busybox\n"); // a relative path is read from the root, as LXD does
    const bad = await raw(socket, "GET", "/1.0/instances/f1/files");
    assert.equal(bad.status, 400);
    assert.match(bad.body.toString(), /Missing path argument/);
  });

  test("errors: a missing file, an unknown instance, a symlink that leads out of the rootfs", async () => {
    assert.match(await fails("file", "pull", "f1/root/nope", join(local, "nope")), /Not Found/);
    assert.ok(!existsSync(join(local, "nope")));
    assert.match(await fails("file", "pull", "ghost/etc/hostname", join(local, "ghost")), /Instance not found/);
    assert.match(await fails("file", "push", join(local, "blob.bin"), "ghost/root/x"), /Instance not found/);
    // Refused by the agent while the 1.5 MiB upload is still coming: the rest is drained, the error answered.
    assert.match(await fails("file", "push", join(local, "blob.bin"), "f1/no/such/dir/x"), /Not Found/);

    // Inside the container, symlinks that would lead to the host if followed naively.
    await exec("f1", "ln -s ../../../../../../../.. /root/up && ln -s / /root/slash");
    assert.match(await fails("file", "pull", "f1/root/up/etc/hostname", join(local, "leak")), /leads out of the instance's root filesystem/);
    assert.ok(!existsSync(join(local, "leak")));
    assert.match(await fails("file", "push", join(local, "offline.txt"), "f1/root/up/tmp/planted"), /leads out/);
    assert.ok(!existsSync("/tmp/planted"));
    // An absolute symlink is followed from the instance's root: the container's file, not the host's.
    await ok("file", "pull", "f1/root/slash/etc/hostname", join(local, "hostname"));
    assert.equal(readFileSync(join(local, "hostname"), "utf8"), "busybox\n");
  });
});
