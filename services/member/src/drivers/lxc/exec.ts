// Commands in a running container through `lxc-attach`, which exits with the
// command's exit code.
//
// Non-interactive: pipes for stdin/stdout/stderr.
// Interactive: a terminal is needed and Node has none without a native module, so
// the util-linux `script` tool holds the host side of a pty and runs lxc-attach on
// it (lxc-attach then gives the command a pty in the container). The window size
// is set with `stty` on that pty, first at start and again on every resize.
//
// The environment is cleared (--clear-env) and set as LXD does: PATH, HOME, USER,
// LANG (and TERM when interactive), then the caller's variables. A cwd other than
// the default (/) is entered with the container's /bin/sh.
import { spawn, type ChildProcess } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";
import { constants } from "node:os";
import { run, signalNumber } from "../../run.ts";
import type { ExecOptions, ExecProcess } from "../driver.ts";

export interface AttachTarget {
  lxcpath: string;
  name: string;
  /** The environment the lxc tools run with (see host.ts). */
  env: NodeJS.ProcessEnv;
  /** Absolute paths of host tools. */
  bin(tool: string): string;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function attachArgs(target: AttachTarget, opts: ExecOptions): string[] {
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOME: opts.uid === 0 ? "/root" : "/",
    USER: opts.uid === 0 ? "root" : "",
    LANG: "C.UTF-8",
  };
  if (opts.interactive) env.TERM = "xterm";
  Object.assign(env, opts.env);
  const args = ["-P", target.lxcpath, "-n", target.name, "--clear-env", "-u", String(opts.uid), "-g", String(opts.gid)];
  for (const [k, v] of Object.entries(env)) if (v !== "") args.push("-v", `${k}=${v}`);
  args.push("--");
  if (opts.cwd) args.push("/bin/sh", "-c", 'cd "$0" && exec "$@"', opts.cwd, ...opts.command);
  else args.push(...opts.command);
  return args;
}

/** Quotes argv for /bin/sh. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

export function attach(target: AttachTarget, opts: ExecOptions): Promise<ExecProcess> {
  const args = attachArgs(target, opts);
  let child: ChildProcess;
  if (opts.interactive) {
    const w = opts.window?.width || 80;
    const h = opts.window?.height || 25;
    const inner = `${target.bin("stty")} cols ${w} rows ${h} -onlcr 2>/dev/null; exec ${shellQuote([target.bin("lxc-attach"), ...args])}`;
    child = spawn(target.bin("script"), ["-q", "-e", "-c", inner, "/dev/null"], {
      env: { ...target.env, SHELL: "/bin/sh" },
      cwd: "/",
      stdio: ["pipe", "pipe", "pipe"],
    });
  } else {
    child = spawn(target.bin("lxc-attach"), args, { env: target.env, cwd: "/", stdio: ["pipe", "pipe", "pipe"] });
  }
  child.stdin!.on("error", () => {}); // the command may exit without reading stdin
  const exited = new Promise<number>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, sig) => resolve(code ?? 128 + signalNumber(sig)));
  });
  const proc: ExecProcess = {
    stdout: child.stdout!,
    stderr: child.stderr!,
    writeStdin: (chunk) => {
      if (!child.stdin!.destroyed) child.stdin!.write(chunk);
    },
    closeStdin: () => {
      // A terminal has no EOF of its own: send ^D as a user typing would.
      if (opts.interactive) child.stdin!.write("\x04");
      else child.stdin!.end();
    },
    signal: (sig) => void deliverSignal(child, sig, opts.interactive),
    resize: (width, height) => void resizePty(child, width, height),
    exited,
  };
  return new Promise((resolve, reject) => {
    child.once("spawn", () => resolve(proc));
    child.once("error", reject);
  });
}

/** Host pids of a process's children (per /proc/<pid>/task/<tid>/children). */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${pid}/task/${tid}/children`, "utf8").catch(() => "");
    for (const p of text.trim().split(/\s+/)) if (p) out.push(Number(p));
  }
  return out;
}

async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const kids = await childrenOf(queue.shift()!);
    out.push(...kids);
    queue.push(...kids);
  }
  return out;
}

/**
 * The command is a child of lxc-attach on the host (its pid seen from the host);
 * signal it there. In interactive mode it sits below script and lxc-attach.
 */
async function deliverSignal(child: ChildProcess, sig: number, interactive: boolean): Promise<void> {
  if (!child.pid || child.exitCode !== null) return;
  if (!Object.values(constants.signals).includes(sig)) return;
  let attachPid = child.pid;
  if (interactive) {
    const kids = await childrenOf(child.pid);
    if (kids.length) attachPid = kids[0];
  }
  const targets = await childrenOf(attachPid);
  for (const pid of targets.length ? targets : [attachPid]) {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/** Sets the size of script's pty (the terminal lxc-attach reads), which forwards SIGWINCH inside. */
async function resizePty(child: ChildProcess, width: number, height: number): Promise<void> {
  if (!child.pid || child.exitCode !== null) return;
  for (const pid of await descendants(child.pid)) {
    const tty = await readlink(`/proc/${pid}/fd/0`).catch(() => "");
    if (tty.startsWith("/dev/pts/")) {
      await run("stty", ["-F", tty, "cols", String(width), "rows", String(height)]);
      return;
    }
  }
}
