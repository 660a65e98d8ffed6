// The LXC config file of an instance, written by the agent at every start from the
// instance record (no lxc-create, no templates). Pure: the same record and host
// give the same text.
import { invalidArgument } from "../../errors.ts";
import type { IdMap, InstanceRecord } from "../driver.ts";
import { cgroupLines, type CgroupVersion } from "./limits.ts";

export interface ConfigContext {
  rootfs: string;
  idmap: IdMap | null;
  cgroup: CgroupVersion;
  seccompProfile?: string;
  logFile?: string;
}

/**
 * The halt signal of a clean stop. Busybox's init ignores LXC's default (SIGPWR)
 * and powers off on SIGUSR2, so an image built for it says `stop_signal: SIGUSR2`
 * in metadata.yaml's properties; an instance overrides it with LXD's own escape
 * hatch, `raw.lxc: lxc.signal.halt = SIG...`. Undefined: LXC's default (SIGPWR).
 */
export function haltSignal(record: InstanceRecord): string | undefined {
  const raw = rawLxcLines(record.config["raw.lxc"] ?? "").find(([k]) => k === "lxc.signal.halt");
  const sig = raw?.[1] ?? record.imageProperties["stop_signal"];
  if (sig === undefined || sig === "") return undefined;
  return checkSignal(sig);
}

export function checkSignal(sig: string): string {
  const s = sig.trim().toUpperCase();
  if (/^SIG[A-Z0-9+-]+$/.test(s) || /^\d+$/.test(s)) return s;
  throw invalidArgument(`Invalid stop signal "${sig}": expected a name like SIGUSR2 or a number`);
}

/** raw.lxc as [key, value] pairs; every line must be `lxc.<key> = <value>` (or blank/comment). */
export function rawLxcLines(raw: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of raw.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith("#")) continue;
    const m = /^(lxc\.[a-z0-9_.]+)\s*=\s*(.*)$/.exec(t);
    if (!m) throw invalidArgument(`Invalid raw.lxc line "${t}": expected "lxc.<key> = <value>"`);
    out.push([m[1], m[2]]);
  }
  return out;
}

export function lxcConfig(record: InstanceRecord, ctx: ConfigContext): string {
  const lines = [
    "# Written by the shoal member agent at every start; edits are lost.",
    `lxc.uts.name = ${record.name}`,
    `lxc.rootfs.path = dir:${ctx.rootfs}`,
  ];
  if (ctx.idmap) {
    lines.push(`lxc.idmap = u 0 ${ctx.idmap.hostBase} ${ctx.idmap.size}`);
    lines.push(`lxc.idmap = g 0 ${ctx.idmap.hostBase} ${ctx.idmap.size}`);
  } else {
    // Privileged: container root is host root. Drop what LXD's default profile drops.
    lines.push("lxc.cap.drop = mac_admin mac_override sys_time sys_module sys_rawio");
  }
  lines.push(
    // No network yet: the container has only its loopback.
    "lxc.net.0.type = empty",
    "lxc.autodev = 1",
    "lxc.pty.max = 1024",
    "lxc.tty.max = 0",
    "lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed",
  );
  if (ctx.seccompProfile) lines.push(`lxc.seccomp.profile = ${ctx.seccompProfile}`);
  const halt = haltSignal(record);
  if (halt) lines.push(`lxc.signal.halt = ${halt}`);
  lines.push(...cgroupLines(record.config, ctx.cgroup));
  const raw = rawLxcLines(record.config["raw.lxc"] ?? "");
  if (raw.length) {
    lines.push("# raw.lxc");
    for (const [k, v] of raw) lines.push(`${k} = ${v}`);
  }
  return lines.join("\n") + "\n";
}
