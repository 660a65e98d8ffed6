// The simulated driver: no processes and no rootfs, for scale tests and benchmarks
// of the control plane alone. It reports itself as `simulated` (in the member's
// heartbeat and, via the gateway, in GET /1.0) and is never used in place of lxc.
//
// Deterministic: start/stop take no time (or a fixed delay when asked), state is a
// function of the calls made, and exec understands a few commands:
//   echo ARGS...        prints ARGS joined by spaces and a newline
//   cat                 copies stdin to stdout until stdin closes
//   true / false        exit 0 / 1
//   sh -c 'exit N'      exits N
//   anything else       "simulated: COMMAND: not found" on stderr, exit 127
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  ExecOptions,
  ExecProcess,
  IdMap,
  InstanceDriver,
  InstancePaths,
  InstanceRecord,
  RuntimeState,
  StopOptions,
} from "../driver.ts";

export interface SimulatedOptions {
  /** Fixed delay of start and stop (ms); default 0. */
  delayMs?: number;
}

export class SimulatedDriver implements InstanceDriver {
  readonly name = "simulated" as const;
  readonly version = "1";
  readonly needsRootfs = false;
  private readonly running = new Set<string>();

  constructor(private readonly opts: SimulatedOptions = {}) {}

  async preflight(): Promise<string | undefined> {
    return undefined;
  }

  async prepareRootfs(): Promise<IdMap | null> {
    return null;
  }

  async start(record: InstanceRecord, _paths: InstancePaths): Promise<void> {
    if (this.opts.delayMs) await sleep(this.opts.delayMs);
    this.running.add(record.name);
  }

  async stop(record: InstanceRecord, _paths: InstancePaths, _opts: StopOptions): Promise<{ clean: boolean }> {
    if (this.opts.delayMs && this.running.has(record.name)) await sleep(this.opts.delayMs);
    this.running.delete(record.name);
    return { clean: true };
  }

  async state(record: InstanceRecord): Promise<RuntimeState> {
    const up = this.running.has(record.name);
    return {
      status: up ? "Running" : "Stopped",
      pid: up ? -1 : 0,
      processes: up ? 1 : 0,
      memoryUsage: 0,
      cpuUsageNs: 0,
      network: up ? [{ name: "lo", addresses: [{ family: "inet", address: "127.0.0.1", netmask: "8", scope: "local" }] }] : [],
    };
  }

  async exec(_record: InstanceRecord, _paths: InstancePaths, opts: ExecOptions): Promise<ExecProcess> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const [cmd, ...args] = opts.command;
    let finish!: (code: number) => void;
    const exited = new Promise<number>((resolve) => (finish = resolve));
    // Commands run on the next turn, so the caller can attach its listeners first.
    const later = (fn: () => void) => void setImmediate(fn);
    let finished = false;
    const done = (code: number, out = "", err = "") => {
      if (finished) return;
      finished = true;
      if (out) stdout.write(out);
      if (err) stderr.write(err);
      stdout.end();
      stderr.end();
      // After the output has flowed to listeners attached in the meantime.
      setImmediate(() => finish(code));
    };
    let onStdin: ((chunk: Uint8Array) => void) | undefined;
    let onClose: (() => void) | undefined;
    const shExit = cmd === "sh" && args[0] === "-c" ? /^\s*exit\s+(\d+)\s*$/.exec(args[1] ?? "") : null;
    if (cmd === "echo") later(() => done(0, args.join(" ") + "\n"));
    else if (cmd === "true") later(() => done(0));
    else if (cmd === "false") later(() => done(1));
    else if (shExit) later(() => done(Number(shExit[1]) & 255));
    else if (cmd === "cat") {
      onStdin = (chunk) => stdout.write(chunk);
      onClose = () => done(0);
    } else later(() => done(127, "", `simulated: ${cmd ?? ""}: not found\n`));
    return {
      stdout,
      stderr,
      writeStdin: (chunk) => onStdin?.(chunk),
      closeStdin: () => onClose?.(),
      signal: (sig) => done(128 + sig),
      resize: () => {},
      exited,
    };
  }

  async runningNames(names: string[]): Promise<Set<string>> {
    return new Set(names.filter((n) => this.running.has(n)));
  }

  async forget(record: InstanceRecord): Promise<void> {
    this.running.delete(record.name);
  }
}
