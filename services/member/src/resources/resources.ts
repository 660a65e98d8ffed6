// The host's resources as the coordinator and placement see them.
import { readFile } from "node:fs/promises";
import { cpus, loadavg, release, totalmem } from "node:os";
import { hostArchitecture } from "../images/metadata.ts";

export interface HostResources {
  cpuCount: number;
  cpuModel: string;
  memoryTotal: number;
  memoryUsed: number;
  load: [number, number, number];
  architecture: string;
  kernelVersion: string;
}

/** Memory in use = total - MemAvailable (what the kernel could hand out without swapping). */
async function memoryUsed(total: number): Promise<number> {
  const text = await readFile("/proc/meminfo", "utf8").catch(() => "");
  const kb = /^MemAvailable:\s+(\d+) kB/m.exec(text)?.[1];
  return kb === undefined ? 0 : Math.max(0, total - Number(kb) * 1024);
}

export async function hostResources(): Promise<HostResources> {
  const c = cpus();
  const total = totalmem();
  const [l1, l5, l15] = loadavg();
  return {
    cpuCount: c.length,
    cpuModel: c[0]?.model ?? "",
    memoryTotal: total,
    memoryUsed: await memoryUsed(total),
    load: [l1, l5, l15],
    architecture: hostArchitecture(),
    kernelVersion: release(),
  };
}

/** Architectures this host runs natively (LXD names). */
export function supportedArchitectures(arch = hostArchitecture()): string[] {
  const personalities: Record<string, string[]> = {
    x86_64: ["x86_64", "i686"],
    aarch64: ["aarch64", "armv7l"],
    ppc64le: ["ppc64le"],
    s390x: ["s390x"],
  };
  return personalities[arch] ?? [arch];
}
