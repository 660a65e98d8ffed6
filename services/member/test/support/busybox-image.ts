// Builds a tiny LXD unified image (metadata.yaml + rootfs/ + templates/, tar.gz)
// from the static busybox of Debian's `busybox-static`: /bin/busybox, one symlink
// per applet where `busybox --list-full` puts it (sbin/init among them), a minimal
// /etc, and metadata with `stop_signal: SIGUSR2` (busybox's init powers off on
// SIGUSR2 and ignores LXC's default SIGPWR). Deterministic: sorted names, fixed
// mtimes and owners, gzip without a name or time, so the same busybox binary gives
// the same fingerprint.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";

export const BUSYBOX = "/bin/busybox";

export interface BusyboxImage {
  /** The tarball (in `dir`). */
  path: string;
  fingerprint: string;
  size: number;
  /** The temp dir holding it; remove with cleanup(). */
  dir: string;
  cleanup(): void;
}

/** Why the image cannot be built here, or undefined. */
export function busyboxMissing(): string | undefined {
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing (Debian package busybox-static)`;
  if (hasInterpreter(readFileSync(BUSYBOX))) return `${BUSYBOX} is dynamically linked (install busybox-static, not busybox)`;
  return undefined;
}

/** Whether a 64-bit little-endian ELF file asks for a dynamic loader (a PT_INTERP program header). */
function hasInterpreter(elf: Buffer): boolean {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (elf.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}

export interface BuildOptions {
  architecture?: string;
  description?: string;
  /** Extra metadata properties. */
  properties?: Record<string, string>;
  /** Leave out stop_signal (to see a clean stop wait its full timeout). */
  noStopSignal?: boolean;
  compression?: "gzip" | "xz";
}

const MTIME = 1_700_000_000; // 2023-11-14T22:13:20Z, the creation_date of the reference image

export function buildBusyboxImage(opts: BuildOptions = {}): BusyboxImage {
  const dir = mkdtempSync(join(tmpdir(), "shoal-bbimg-"));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const root = join(dir, "tree");
    const rootfs = join(root, "rootfs");
    for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "run", "tmp", "root", "var/log"]) {
      mkdirSync(join(rootfs, d), { recursive: true });
    }
    mkdirSync(join(root, "templates"));
    copyFileSync(BUSYBOX, join(rootfs, "bin/busybox"));
    chmodSync(join(rootfs, "bin/busybox"), 0o755);
    const applets = execFileSync(BUSYBOX, ["--list-full"], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && l !== "bin/busybox" && !l.includes(".."))
      .sort();
    for (const rel of applets) {
      const link = join(rootfs, rel);
      if (existsSync(link)) continue;
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(relative(dirname(link), join(rootfs, "bin/busybox")), link);
    }
    const files: Record<string, [string, number]> = {
      "etc/passwd": ["root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644],
      "etc/group": ["root:x:0:\nnogroup:x:65534:\n", 0o644],
      "etc/hostname": ["busybox\n", 0o644],
      // No gettys: init runs nothing but waits; SIGUSR2 powers it off.
      "etc/inittab": ["::sysinit:/bin/hostname -F /etc/hostname\n", 0o644],
      "etc/hello.txt": ["hello from busybox\n", 0o644],
    };
    for (const [rel, [text, mode]] of Object.entries(files)) {
      writeFileSync(join(rootfs, rel), text);
      chmodSync(join(rootfs, rel), mode);
    }
    chmodSync(join(rootfs, "tmp"), 0o1777);
    chmodSync(join(rootfs, "root"), 0o700);
    const props: Record<string, string> = {
      description: opts.description ?? "busybox test",
      os: "busybox",
      release: "1",
      ...(opts.noStopSignal ? {} : { stop_signal: "SIGUSR2" }),
      ...(opts.properties ?? {}),
    };
    const yaml = [
      `architecture: ${opts.architecture ?? hostArch()}`,
      `creation_date: ${MTIME}`,
      "properties:",
      ...Object.entries(props)
        .sort()
        .map(([k, v]) => `  ${k}: "${v.replace(/["\\]/g, "\\$&")}"`),
      "templates: {}",
      "",
    ].join("\n");
    writeFileSync(join(root, "metadata.yaml"), yaml);
    const compression = opts.compression ?? "gzip";
    const path = join(dir, compression === "xz" ? "busybox.tar.xz" : "busybox.tar.gz");
    const tarArgs = ["--sort=name", `--mtime=@${MTIME}`, "--owner=0", "--group=0", "--numeric-owner", "--format=gnu", "-C", root, "-cf", "-", "metadata.yaml", "rootfs", "templates"];
    const tar = execFileSync("tar", tarArgs, { maxBuffer: 64 << 20 });
    const packed = compression === "xz" ? execFileSync("xz", ["-c", "-6"], { input: tar, maxBuffer: 64 << 20 }) : execFileSync("gzip", ["-n", "-9", "-c"], { input: tar, maxBuffer: 64 << 20 });
    writeFileSync(path, packed);
    rmSync(root, { recursive: true, force: true });
    const data = readFileSync(path);
    return { path, fingerprint: createHash("sha256").update(data).digest("hex"), size: data.length, dir, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

function hostArch(): string {
  return process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch;
}
