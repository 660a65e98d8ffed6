// Shared by the tests that run real containers on a local cluster (test/instances,
// test/evacuation): the real lxc with stdin at EOF, and the set-up and clean-up of
// a cluster whose members run unprivileged containers.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import { LXC, type RunResult } from "../api/support.ts";
import { TestCluster } from "../cluster/support.ts";
import { buildBusyboxImage, type BusyboxImage } from "../../services/member/test/support/busybox-image.ts";

export interface ListedInstance {
  name: string;
  status: string;
  location: string;
  state: { pid: number; processes: number; status: string } | null;
  config: Record<string, string>;
}

/** The real lxc against `c`'s gateway socket, each call bounded by `timeoutMs`. */
export function lxcClient(c: TestCluster, timeoutMs = 60_000) {
  /** With `input` on stdin, then EOF: `lxc launch|init` read a YAML config from a non-terminal stdin. */
  const runWith = (input: string, ...args: string[]): Promise<RunResult> =>
    new Promise((resolve) => {
      const env = { PATH: process.env.PATH, HOME: c.env.LXD_CONF, LANG: "C", ...c.env };
      const child = execFile(LXC, args, { env, timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === "number" ? Number((err as NodeJS.ErrnoException).code) : null) : 0;
        resolve({ code, stdout, stderr });
      });
      child.stdin?.end(input);
    });
  const run = (...args: string[]): Promise<RunResult> => runWith("", ...args);
  const ok = async (...args: string[]) => {
    const r = await run(...args);
    assert.equal(r.code, 0, `lxc ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const fails = async (...args: string[]) => {
    const r = await run(...args);
    assert.notEqual(r.code, 0, `lxc ${args.join(" ")} should fail: ${r.stdout}`);
    return r.stderr.trim();
  };
  const list = async (): Promise<ListedInstance[]> => JSON.parse(await ok("list", "--format", "json"));
  return { runWith, run, ok, fails, list };
}

/** Bootstraps `members[0]` and joins the others; unprivileged containers (host uid 1000000) must traverse every parent of their rootfs. */
export async function startContainerCluster(c: TestCluster, members: string[]): Promise<void> {
  chmodSync(c.dir, 0o711);
  mkdirSync(join(c.dir, "members"), { mode: 0o711 });
  await c.bootstrap(members[0]);
  for (const name of members.slice(1)) await c.join(name, await c.token(name));
}

/** Force-stops any container called one of `names` on the members' own lxcpaths (what an aborted test left running; only ours). */
export function killLeftovers(c: TestCluster, members: string[], names: Iterable<string>): void {
  for (const m of members) {
    for (const name of names) {
      try {
        execFileSync("lxc-stop", ["-P", join(c.memberDir(m), "agent", "lxc"), "-n", name, "-k"], { stdio: "ignore", timeout: 20_000 });
      } catch {
        /* not running there */
      }
    }
  }
}

/**
 * A suite's cluster of `members` running real containers, set up before its tests and
 * torn down after (instances in `created` deleted, leftovers killed by name; with
 * SHOAL_TEST_DUMP=1 every process's output is printed). `image` is the busybox test
 * image, imported as `bb` when `importImage` is set.
 */
export function containerSuite(members: string[], opts: { timeoutMs?: number; importImage?: boolean } = {}) {
  const c = new TestCluster();
  const suite = { c, created: new Set<string>(), image: undefined as unknown as BusyboxImage, ...lxcClient(c, opts.timeoutMs) };
  before(async () => {
    suite.image = buildBusyboxImage();
    await startContainerCluster(c, members);
    if (opts.importImage) await suite.ok("image", "import", suite.image.path, "--alias", "bb");
  });
  after(async () => {
    for (const name of suite.created) await suite.run("delete", "--force", name);
    killLeftovers(c, members, suite.created);
    if (process.env.SHOAL_TEST_DUMP) for (const p of c.procs.values()) process.stdout.write(`--- ${p.name}\n${p.output().slice(-20000)}\n`);
    await c.close();
    suite.image?.cleanup();
  });
  return suite;
}
