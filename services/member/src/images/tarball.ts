// LXD's unified image tarball (metadata.yaml + rootfs/ + templates/ in one tar,
// compressed or not), read with the system `tar` (GNU tar detects the compression
// of a file by itself). Split images (metadata tarball + squashfs rootfs) are not
// supported yet.
import { open } from "node:fs/promises";
import { invalidArgument } from "../errors.ts";
import { run, runOk } from "../run.ts";
import { parseImageMetadata, type ImageMetadata } from "./metadata.ts";

export type Compression = "gzip" | "xz" | "zstd" | "bzip2" | "none";

/** Detects the compression from the file's magic bytes. */
export async function detectCompression(path: string): Promise<Compression> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(6);
    await fh.read(buf, 0, 6, 0);
    if (buf[0] === 0x1f && buf[1] === 0x8b) return "gzip";
    if (buf.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return "xz";
    if (buf.readUInt32LE(0) === 0xfd2fb528) return "zstd";
    if (buf.subarray(0, 3).toString("latin1") === "BZh") return "bzip2";
    return "none";
  } finally {
    await fh.close();
  }
}

export interface TarballInfo {
  metadata: ImageMetadata;
  /** "" or "./": how member names start in this tarball. */
  prefix: string;
}

/** Reads metadata.yaml out of a unified tarball. Throws INVALID_ARGUMENT for anything else. */
export async function readTarball(path: string): Promise<TarballInfo> {
  for (const prefix of ["", "./"]) {
    const r = await run("tar", ["-xOf", path, "--occurrence=1", `${prefix}metadata.yaml`]);
    if (r.code === 0 && r.stdout.length > 0) return { metadata: parseImageMetadata(r.stdout), prefix };
    if (/not in gzip format|unrecognized|Unexpected EOF|not look like a tar/i.test(r.stderr)) break;
  }
  throw invalidArgument("Invalid image: not a unified image tarball (no metadata.yaml at its top level)");
}

/**
 * Unpacks the image's rootfs/ into `dest` (which becomes dest/rootfs), keeping
 * numeric owners, modes and extended attributes as they are in the tarball.
 */
export async function unpackRootfs(image: string, prefix: string, dest: string): Promise<void> {
  await runOk("tar", [
    "-xf",
    image,
    "-C",
    dest,
    "--numeric-owner",
    "--same-owner",
    "--same-permissions",
    "--xattrs",
    "--xattrs-include=*",
    `${prefix}rootfs`,
  ]);
}
