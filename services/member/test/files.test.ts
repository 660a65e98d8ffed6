// The file API of the agent (files/): paths resolved inside a rootfs and never out
// of it (".." above the root refused, symlinks followed relative to the rootfs root,
// a symlink that leads out refused and nothing written outside), ids shifted by the
// instance's id map both ways, LXD's write semantics (new entries get the given
// owner and mode, existing files keep theirs, append needs the file), and the
// ReadFile/WriteFile/DeleteFile streams over gRPC on a real (stopped) instance.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MemberClient } from "../src/agent/client.ts";
import { runMemberAgent, type RunningMemberAgent } from "../src/agent/main.ts";
import { AgentError } from "../src/errors.ts";
import { InstanceFiles } from "../src/files/instance-files.ts";
import { absoluteTarget, hostId, instanceId, pathComponents } from "../src/files/paths.ts";
import { buildBusyboxImage, type BusyboxImage } from "./support/busybox-image.ts";
import { clusterTls, lxcSkipReason, tempDir } from "./support/env.ts";

const MAP = { hostBase: 1_000_000, size: 65_536 };
const isRoot = process.getuid?.() === 0;

const kind = (k: AgentError["kind"], re?: RegExp) => (err: unknown) => err instanceof AgentError && err.kind === k && (!re || re.test(err.message));
const bytes = (s: string | Buffer) => [Buffer.from(s)];
async function readAll(data: AsyncIterable<Uint8Array> | undefined): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of data ?? []) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe("file paths (pure)", () => {
  it("splits a path into components; relative is from the root; empty and NUL refused", () => {
    assert.deepEqual(pathComponents("/etc//./hosts"), ["etc", "hosts"]);
    assert.deepEqual(pathComponents("etc/hosts"), ["etc", "hosts"]);
    assert.deepEqual(pathComponents("/a/../b"), ["a", "..", "b"]);
    assert.deepEqual(pathComponents("/"), []);
    assert.throws(() => pathComponents(""), kind("invalid-argument", /Missing path/));
    assert.throws(() => pathComponents("/a\0b"), kind("invalid-argument", /NUL/));
  });

  it("shifts ids by the map both ways; ids outside it are refused in, 65534 out", () => {
    assert.equal(hostId(0, MAP, "uid"), 1_000_000);
    assert.equal(hostId(1000, MAP, "gid"), 1_001_000);
    assert.throws(() => hostId(65_536, MAP, "uid"), kind("invalid-argument", /uid 65536/));
    assert.throws(() => hostId(-1, MAP, "uid"), kind("invalid-argument"));
    assert.equal(instanceId(1_001_000, MAP), 1000);
    assert.equal(instanceId(0, MAP), 65534);
    assert.equal(instanceId(1_065_536, MAP), 65534);
    assert.equal(hostId(1000, null, "uid"), 1000);
    assert.equal(instanceId(0, null), 0);
  });

  it("a symlink's target as an absolute path in the instance (.. stops at the root)", () => {
    assert.equal(absoluteTarget("/bin", "busybox"), "/bin/busybox");
    assert.equal(absoluteTarget("/usr/bin", "../../bin/busybox"), "/bin/busybox");
    assert.equal(absoluteTarget("/root", "../../../../etc/shadow"), "/etc/shadow");
    assert.equal(absoluteTarget("/root", "/etc/./hosts"), "/etc/hosts");
  });
});

describe("instance files on a rootfs", { skip: !isRoot && "needs root (chown into the id map)" }, () => {
  const tmp = tempDir("files");
  // host/: what must never be reached; host/rootfs/: the instance's root.
  const host = tmp.path;
  const rootfs = join(host, "rootfs");
  let files: InstanceFiles;

  before(() => {
    for (const d of ["etc", "root", "tmp", "bin", "usr/bin"]) mkdirSync(join(rootfs, d), { recursive: true });
    writeFileSync(join(rootfs, "etc/hostname"), "container\n");
    writeFileSync(join(rootfs, "bin/busybox"), "bb");
    symlinkSync("busybox", join(rootfs, "bin/sh"));
    mkdirSync(join(host, "etc"));
    writeFileSync(join(host, "etc/hostname"), "HOST\n");
    writeFileSync(join(host, "secret"), "HOST SECRET\n");
    execFileSync("chown", ["-R", "1000000:1000000", rootfs]);
    files = new InstanceFiles(rootfs, MAP);
  });
  after(() => tmp.cleanup());

  it("creates a file owned by the instance's root (shifted), 0644 by default; reads it back unshifted", async () => {
    const e = await files.write({ path: "/root/a.txt", type: "file" }, bytes("hello\n"));
    assert.deepEqual([e.type, e.uid, e.gid, e.mode, e.size, e.path], ["file", 0, 0, 0o644, 6, "/root/a.txt"]);
    const st = statSync(join(rootfs, "root/a.txt"));
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1_000_000, 1_000_000, 0o644]);
    const r = await files.read("root/a.txt");
    assert.equal(r.entry.uid, 0);
    assert.equal((await readAll(r.data)).toString(), "hello\n");
  });

  it("honours uid, gid and mode of a new file; an existing file keeps its own (LXD)", async () => {
    await files.write({ path: "/tmp/b", type: "file", uid: 1000, gid: 100, mode: 0o600 }, bytes("one"));
    const st = statSync(join(rootfs, "tmp/b"));
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1_001_000, 1_000_100, 0o600]);
    const e = await files.write({ path: "/tmp/b", type: "file", uid: 0, gid: 0, mode: 0o666 }, bytes("two"));
    assert.deepEqual([e.uid, e.gid, e.mode, e.size], [1000, 100, 0o600, 3]);
    assert.equal(readFileSync(join(rootfs, "tmp/b"), "utf8"), "two");
    await files.write({ path: "/tmp/b", type: "file", append: true }, bytes("+three"));
    assert.equal(readFileSync(join(rootfs, "tmp/b"), "utf8"), "two+three");
    await assert.rejects(files.write({ path: "/tmp/none", type: "file", append: true }, bytes("x")), kind("not-found"));
    await assert.rejects(files.write({ path: "/tmp/c", type: "file", uid: 70_000 }, bytes("x")), kind("invalid-argument", /uid 70000/));
    assert.ok(!existsSync(join(rootfs, "tmp/c")));
  });

  it("a host id outside the map shows as 65534", async () => {
    writeFileSync(join(rootfs, "tmp/hostowned"), "x");
    const { entry } = await files.read("/tmp/hostowned", { statOnly: true });
    assert.deepEqual([entry.uid, entry.gid], [65534, 65534]);
  });

  it("refuses a '..' above the root in the request; '..' inside is fine", async () => {
    await assert.rejects(files.read("/../secret"), kind("invalid-argument", /above the instance's root/));
    await assert.rejects(files.read("../../etc/hostname"), kind("invalid-argument"));
    await assert.rejects(files.write({ path: "/../evil", type: "file" }, bytes("x")), kind("invalid-argument"));
    assert.ok(!existsSync(join(host, "evil")));
    const r = await files.read("/root/../etc/hostname");
    assert.equal((await readAll(r.data)).toString(), "container\n");
    assert.equal(r.entry.path, "/etc/hostname");
  });

  it("follows an absolute symlink from the rootfs root, never the host's", async () => {
    symlinkSync("/etc", join(rootfs, "root/etc-link"));
    symlinkSync("/", join(rootfs, "root/slash"));
    assert.equal((await readAll((await files.read("/root/etc-link/hostname")).data)).toString(), "container\n");
    assert.equal((await readAll((await files.read("/root/slash/etc/hostname")).data)).toString(), "container\n");
    // A write through it lands in the rootfs too.
    await files.write({ path: "/root/slash/tmp/via-link", type: "file" }, bytes("in"));
    assert.equal(readFileSync(join(rootfs, "tmp/via-link"), "utf8"), "in");
  });

  it("refuses a symlink that leads out with '..'; nothing is read or written outside", async () => {
    symlinkSync("../../../../../..", join(rootfs, "root/up"));
    symlinkSync("../../secret", join(rootfs, "root/secret-link"));
    await assert.rejects(files.read("/root/up/secret"), kind("permission-denied", /"\/root\/up" leads out/));
    await assert.rejects(files.read("/root/up/etc/hostname"), kind("permission-denied"));
    await assert.rejects(files.write({ path: "/root/up/planted", type: "file" }, bytes("x")), kind("permission-denied"));
    await assert.rejects(files.write({ path: "/root/up/planted-dir", type: "directory" }, []), kind("permission-denied"));
    // Writing to the link itself follows it (a write follows a final symlink): refused too.
    await assert.rejects(files.write({ path: "/root/secret-link", type: "file" }, bytes("overwritten")), kind("permission-denied"));
    assert.ok(!existsSync(join(host, "planted")) && !existsSync(join(host, "planted-dir")) && !existsSync(join(tmp.path, "..", "planted")));
    assert.equal(readFileSync(join(host, "secret"), "utf8"), "HOST SECRET\n");
    // Reading the link itself is not following it: its target as text, clamped at the root (LXD's answer).
    const { entry } = await files.read("/root/secret-link");
    assert.deepEqual([entry.type, entry.target], ["symlink", "/secret"]);
  });

  it("reads a symlink as itself (type symlink, absolute target); a write through a final symlink follows it", async () => {
    const { entry, data } = await files.read("/bin/sh");
    assert.deepEqual([entry.type, entry.target, data], ["symlink", "/bin/busybox", undefined]);
    symlinkSync("../etc/hostname", join(rootfs, "tmp/host-link"));
    await files.write({ path: "/tmp/host-link", type: "file" }, bytes("renamed\n"));
    assert.equal(readFileSync(join(rootfs, "etc/hostname"), "utf8"), "renamed\n");
    assert.ok(lstatSync(join(rootfs, "tmp/host-link")).isSymbolicLink());
  });

  it("a symlink loop is refused", async () => {
    symlinkSync("loop2", join(rootfs, "tmp/loop1"));
    symlinkSync("loop1", join(rootfs, "tmp/loop2"));
    await assert.rejects(files.read("/tmp/loop1/x"), kind("invalid-argument", /Too many levels/));
  });

  it("directories: listing (sorted), creation (0750, shifted owner), an existing one is fine", async () => {
    const { entry } = await files.read("/");
    assert.equal(entry.type, "directory");
    assert.deepEqual(entry.entries, ["bin", "etc", "root", "tmp", "usr"]);
    const d = await files.write({ path: "/srv", type: "directory" }, []);
    assert.deepEqual([d.type, d.uid, d.mode], ["directory", 0, 0o750]);
    const st = statSync(join(rootfs, "srv"));
    assert.deepEqual([st.uid, st.mode & 0o7777], [1_000_000, 0o750]);
    await files.write({ path: "/srv/sub", type: "directory", uid: 5, gid: 6, mode: 0o755 }, []);
    assert.deepEqual([statSync(join(rootfs, "srv/sub")).uid, statSync(join(rootfs, "srv/sub")).gid], [1_000_005, 1_000_006]);
    await files.write({ path: "/srv", type: "directory", mode: 0o700 }, []);
    assert.equal(statSync(join(rootfs, "srv")).mode & 0o777, 0o750);
    await assert.rejects(files.write({ path: "/etc/hostname", type: "directory" }, []), kind("already-exists"));
    await assert.rejects(files.write({ path: "/srv", type: "file" }, bytes("x")), kind("invalid-argument", /is a directory/));
    await assert.rejects(files.write({ path: "/nope/x", type: "file" }, bytes("x")), kind("not-found"));
    await assert.rejects(files.write({ path: "/etc/hostname/x", type: "file" }, bytes("x")), kind("invalid-argument", /Not a directory/));
  });

  it("symlinks: created with the shifted owner; the same again is fine, another target is refused", async () => {
    const e = await files.write({ path: "/srv/link", type: "symlink" }, bytes("../etc/hostname"));
    assert.deepEqual([e.type, e.target], ["symlink", "/etc/hostname"]);
    assert.equal(readlinkSync(join(rootfs, "srv/link")), "../etc/hostname");
    assert.equal(lstatSync(join(rootfs, "srv/link")).uid, 1_000_000);
    await files.write({ path: "/srv/link", type: "symlink" }, bytes("../etc/hostname"));
    await assert.rejects(files.write({ path: "/srv/link", type: "symlink" }, bytes("/other")), kind("already-exists"));
    await assert.rejects(files.write({ path: "/srv/x", type: "fifo" }, []), kind("invalid-argument", /Bad file type: fifo/));
  });

  it("delete: a file, a symlink (not its target), an empty directory; errors", async () => {
    await files.delete("/srv/link");
    assert.ok(!existsSync(join(rootfs, "srv/link")) && existsSync(join(rootfs, "etc/hostname")));
    await assert.rejects(files.delete("/srv"), kind("invalid-argument", /not empty/));
    await files.delete("/srv/sub");
    await files.delete("srv");
    assert.ok(!existsSync(join(rootfs, "srv")));
    await assert.rejects(files.delete("/srv"), kind("not-found"));
    await assert.rejects(files.delete("/"), kind("invalid-argument"));
    await assert.rejects(files.delete("/root/up/secret"), kind("permission-denied"));
    assert.ok(existsSync(join(host, "secret")));
  });

  it("a FIFO is neither read nor written (no hang)", async () => {
    execFileSync("mkfifo", [join(rootfs, "tmp/fifo")]);
    await assert.rejects(files.read("/tmp/fifo"), kind("invalid-argument", /not a regular file/));
    await assert.rejects(files.write({ path: "/tmp/fifo", type: "file" }, bytes("x")), kind("invalid-argument"));
  });
});

const lxcSkip = await lxcSkipReason();

describe("ReadFile / WriteFile / DeleteFile over gRPC (a stopped real instance)", { skip: lxcSkip ?? false }, () => {
  const dir = tempDir("files-agent");
  let img: BusyboxImage;
  let agent: RunningMemberAgent;
  let client: MemberClient;

  before(async () => {
    const tls = await clusterTls();
    img = buildBusyboxImage();
    agent = await runMemberAgent({ dir: dir.path, name: "m1", listen: "127.0.0.1:0", tls, driver: "lxc" });
    client = new MemberClient(agent.address, tls);
    await client.importImageFile(img.path, { fingerprint: img.fingerprint });
    await client.createInstance({ name: "f1", imageFingerprint: img.fingerprint });
  });
  after(async () => {
    client?.close();
    await agent?.close();
    img?.cleanup();
    dir.cleanup();
  });

  it("writes 3 MiB in chunks and reads them back byte for byte, owned by the shifted root", async () => {
    const content = randomBytes(3 << 20);
    const chunks = [content.subarray(0, 1000), content.subarray(1000, 2 << 20), content.subarray(2 << 20)];
    const info = await client.writeFile({ name: "f1", path: "/root/big.bin", type: "file", mode: 0o640, uid: 7 }, chunks);
    assert.deepEqual([info.type, info.size, info.mode, info.uid], ["file", content.length, 0o640, 7]);
    assert.equal(statSync(join(dir.path, "pools/default/containers/f1/rootfs/root/big.bin")).uid, 1_000_007);
    const r = await client.readFile("f1", "root/big.bin");
    assert.equal(r.info.size, content.length);
    assert.ok((await readAll(r.data)).equals(content));
  });

  it("lists a directory, reads a symlink, deletes; errors keep their codes", async () => {
    const root = await client.readFile("f1", "/");
    assert.equal(root.info.type, "directory");
    assert.ok(root.info.entries.includes("bin") && root.info.entries.includes("etc"), root.info.entries.join(","));
    const sh = await client.readFile("f1", "/bin/sh");
    assert.deepEqual([sh.info.type, sh.info.target], ["symlink", "/bin/busybox"]);
    const head = await client.readFile("f1", "/etc/hello.txt", { statOnly: true });
    assert.equal(head.info.size, "hello from busybox\n".length);
    assert.equal((await readAll(head.data)).length, 0);
    await client.deleteFile("f1", "/root/big.bin");
    await assert.rejects(client.readFile("f1", "/root/big.bin"), (e) => (e as { code: number }).code === 5 /* NOT_FOUND */);
    await assert.rejects(client.readFile("nosuch", "/etc/hostname"), (e) => (e as { code: number }).code === 5);
    await assert.rejects(client.readFile("f1", "/../etc"), (e) => (e as { code: number }).code === 3 /* INVALID_ARGUMENT */);
    await client.writeFile({ name: "f1", path: "/root/up", type: "symlink" }, [Buffer.from("../../../../..")]);
    await assert.rejects(client.readFile("f1", "/root/up/etc/hostname"), (e) => (e as { code: number }).code === 7 /* PERMISSION_DENIED */);
  });
});
