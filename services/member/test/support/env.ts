// Shared test setup: temp directories that are always removed, the cluster
// certificate, and whether real containers can run here (and if not, exactly why).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { generateCertificate } from "../../../raft/src/transport/certificate.ts";
import type { TlsConfig } from "../../../raft/src/transport/credentials.ts";
import { lxcHost } from "../../src/drivers/lxc/host.ts";
import { busyboxMissing } from "./busybox-image.ts";

export function tempDir(prefix: string): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), `shoal-member-${prefix}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export async function clusterTls(): Promise<TlsConfig> {
  const pair = await generateCertificate({ commonName: "shoal-test" });
  return { cert: pair.cert, key: pair.key, ca: pair.cert };
}

/** Undefined when real containers can run; else the precise reason (for t.skip). */
export async function lxcSkipReason(): Promise<string | undefined> {
  const bb = busyboxMissing();
  if (bb) return `no test image: ${bb}`;
  const h = await lxcHost();
  if (h.problem) return `lxc driver unavailable: ${h.problem}`;
  return undefined;
}

/** Kills and forgets a container an aborted test may have left (only ours: by lxcpath). */
export function killContainer(lxcpath: string, name: string): void {
  try {
    execFileSync("lxc-stop", ["-P", lxcpath, "-n", name, "-k"], { stdio: "ignore", timeout: 20_000 });
  } catch {
    /* not running */
  }
}
