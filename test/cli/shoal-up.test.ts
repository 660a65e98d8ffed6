// `shoal up` as a user runs it: a child process that starts 3 database node
// processes and a gateway, driven with the real `lxc` over DIR/unix.socket. One
// member is SIGKILLed (the other two voters keep the cluster serving), shoal up is
// stopped with SIGTERM (every child exits), and a second `shoal up` on the same DIR
// resumes the same cluster (same address, same stored trust password).
// Only processes this test started (shoal up, and the PIDs it printed whose command
// lines carry our DIR) are ever signalled.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { ClusterDatabaseClient } from "../../services/raft/src/node/database-client.ts";
import { LXC, lxc } from "../api/support.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const SHOAL = join(ROOT, "services/api/src/shoal.ts");
const PASSWORD = "up-s3cret";

interface Up {
  proc: ChildProcess;
  address: string;
  pids: Map<string, number>;
  output(): string;
  exited: Promise<number | null>;
}

function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return undefined;
  }
}

/** Alive and still the process we started (its command line carries our dir). */
function ours(pid: number, dir: string): boolean {
  const cmd = cmdline(pid);
  if (cmd === undefined) return false;
  const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return state !== "Z" && cmd.includes(dir);
}

async function waitUntil(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

function startUp(dir: string): Promise<Up> {
  const proc = spawn(process.execPath, ["--import", "tsx", SHOAL, "up", "--dir", dir, "--members", "3"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => proc.once("exit", (code) => res(code)));
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`shoal up printed no address within 90 s:\n${out}`)), 90_000);
    proc.stdout!.on("data", () => {
      const m = /^shoal: ready at https:\/\/(\S+)/m.exec(out);
      if (!m) return;
      clearTimeout(timer);
      const pids = new Map<string, number>();
      for (const [, name, pid] of out.matchAll(/^\s+(member\d+|gateway)\s+.*\spid (\d+)$/gm)) pids.set(name, Number(pid));
      res({ proc, address: m[1], pids, output: () => out, exited });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`shoal up exited with ${code} before it was ready:\n${out}`));
    });
  });
}

async function stopUp(up: Up, dir: string): Promise<void> {
  up.proc.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([up.exited, new Promise<string>((r) => (timer = setTimeout(() => r("timeout"), 45_000)))]);
  clearTimeout(timer);
  assert.equal(code, 0, `shoal up did not exit cleanly on SIGTERM (${code}):\n${up.output()}`);
  for (const [name, pid] of up.pids) assert.ok(!ours(pid, dir), `${name} (pid ${pid}) still runs after shoal up stopped`);
}

describe("shoal up: a local cluster of separate processes", { skip: existsSync(LXC) ? false : `${LXC} missing (apt-get install lxd-client)` }, () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-up-"));
  const local = { LXD_CONF: join(dir, "lxc-local"), LXD_DIR: dir };
  const remote = { LXD_CONF: join(dir, "lxc-remote") };
  const started: Up[] = [];

  after(() => {
    // Anything still running that we started (a failed assertion midway): SIGKILL by PID.
    for (const up of started) {
      for (const pid of up.pids.values()) if (ours(pid, dir)) process.kill(pid, "SIGKILL");
      if (up.proc.exitCode === null && up.proc.signalCode === null) up.proc.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  });

  let address = "";

  test("starts 3 member processes and a gateway, each carrying DIR and its name", async () => {
    const up = await startUp(dir);
    started.push(up);
    address = up.address;
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual([...up.pids.keys()].sort(), ["gateway", "member1", "member2", "member3"]);
    for (const [name, pid] of up.pids) {
      const cmd = cmdline(pid) ?? "";
      assert.ok(cmd.includes(dir), `${name}: ${cmd}`);
      if (name === "gateway") assert.match(cmd, / gateway --dir /);
      else assert.ok(cmd.includes(` member --dir ${join(dir, "members", name)} `), `${name}: ${cmd}`);
    }
    assert.match(up.output(), new RegExp(`lxc remote add shoal https://${address.replace(/\./g, "\\.")} --password \\S+ --accept-certificate`));
    assert.match(up.output(), new RegExp(`LXD_DIR=${dir} lxc config set core.trust_password \\S+`));
    assert.match(up.output(), new RegExp(`LXD_DIR=${dir} lxc config trust add --name \\S+`));
    const cluster = JSON.parse(readFileSync(join(dir, "cluster.json"), "utf8"));
    assert.equal(cluster.gateway.https, address);
    assert.deepEqual(cluster.members.map((m: { name: string }) => m.name), ["member1", "member2", "member3"]);
  });

  test("LXD_DIR=DIR lxc info is trusted and names the HTTPS address; config set is stored", async () => {
    const info = await lxc(["info"], local);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^auth: trusted$/m);
    const https = await lxc(["config", "get", "core.https_address"], local);
    assert.equal(https.stdout.trim(), address, https.stderr);
    const set = await lxc(["config", "set", "core.trust_password", PASSWORD], local);
    assert.equal(set.code, 0, set.stderr);
  });

  test("the members formed one cluster: member1 bootstrapped it, the others joined by token and became voters", async () => {
    let last = "";
    await waitUntil("three voters", 20_000, async () => {
      const r = await lxc(["cluster", "list", "--format", "csv"], local);
      last = r.stdout + r.stderr;
      const rows = r.stdout.trim().split("\n");
      return rows.length === 3 && rows.every((row) => /,"?(database-leader,)?database"?,/.test(row) && row.includes(",ONLINE,Fully operational"));
    }).catch((e: Error) => assert.fail(`${e.message}:\n${last}`));
    assert.match(last, /^member1,https:\/\/127\.0\.0\.1:\d+,/m);
  });

  test("SIGKILL of the leader's database member: the gateway still reads and writes (two voters remain)", async () => {
    const up = started[0];
    // The member whose node leads (the hardest one to lose), asked of the database itself.
    const cluster = JSON.parse(readFileSync(join(dir, "cluster.json"), "utf8")) as { members: { name: string; database: string }[] };
    const cert = readFileSync(join(dir, "cluster.crt"), "utf8");
    const db = new ClusterDatabaseClient(cluster.members.map((m) => m.database), { cert, key: readFileSync(join(dir, "cluster.key"), "utf8"), ca: cert });
    let victim = "";
    try {
      await waitUntil("a known leader", 15_000, async () => {
        victim = (await db.status().catch(() => ({ leader: "" }))).leader;
        return victim !== "";
      });
    } finally {
      db.close();
    }
    assert.ok(up.pids.has(victim), `leader ${victim} is not one of the members shoal up printed`);
    const pid = up.pids.get(victim)!;
    assert.ok(ours(pid, dir));
    process.kill(pid, "SIGKILL");
    await waitUntil(`${victim} to be gone`, 10_000, () => !ours(pid, dir));
    await waitUntil(`shoal up to report ${victim}'s death`, 10_000, () => new RegExp(`${victim} \\(member, pid ${pid}\\) exited unexpectedly`).test(up.output()));
    let last = "";
    await waitUntil("lxc config set (a replicated write) to succeed with a member down", 30_000, async () => {
      const r = await lxc(["config", "set", "core.trust_password", PASSWORD], local, 15_000);
      last = r.stderr;
      return r.code === 0;
    }).catch((e: Error) => assert.fail(`${e.message}: ${last}`));
    const info = await lxc(["info"], local);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /core\.trust_password: true/);
  });

  test("SIGTERM to shoal up stops every child", async () => {
    await stopUp(started[0], dir);
    assert.ok(!existsSync(join(dir, "shoal.pid")));
  });

  test("shoal up again on the same DIR resumes: same address, same stored password", async () => {
    const up = await startUp(dir);
    started.push(up);
    assert.equal(up.address, address);
    assert.match(up.output(), /resumed the cluster/);
    const got = await lxc(["config", "get", "core.trust_password"], local);
    assert.equal(got.stdout.trim(), "true", got.stderr);
    // The password set before the restart still admits a client over HTTPS.
    const add = await lxc(["remote", "add", "shoal", `https://${address}`, "--password", PASSWORD, "--accept-certificate"], remote);
    assert.equal(add.code, 0, add.stderr);
    const info = await lxc(["info", "shoal:"], remote);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^auth: trusted$/m);
    // The token route shoal up prints works too.
    const tokenConf = { LXD_CONF: join(dir, "lxc-token") };
    const made = await lxc(["config", "trust", "add", "--name", "my-client"], local);
    assert.equal(made.code, 0, made.stderr);
    const token = made.stdout.trim().split("\n").pop()!;
    const byToken = await lxc(["remote", "add", "shoal", token], tokenConf);
    assert.equal(byToken.code, 0, byToken.stderr);
    assert.match((await lxc(["info", "shoal:"], tokenConf)).stdout, /^auth: trusted$/m);
    await stopUp(up, dir);
  });
});
