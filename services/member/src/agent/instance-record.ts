// The agent's durable record of an instance: instance.json in the instance's
// directory (see InstanceRecord in ../drivers/driver.ts), written atomically, and the
// checks a record's config must pass before any driver sees it.
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { InstanceRecord } from "../drivers/driver.ts";
import { rawLxcLines } from "../drivers/lxc/config.ts";
import { validateLimits } from "../drivers/lxc/limits.ts";
import { invalidArgument } from "../errors.ts";

/** Refuses config values the drivers would refuse at start (limits, raw.lxc). */
export function validateConfig(config: Record<string, string>): void {
  for (const [k, v] of Object.entries(config)) {
    if (typeof v !== "string") throw invalidArgument(`Invalid config value for "${k}"`);
  }
  const priv = config["security.privileged"];
  if (priv !== undefined && !["true", "false"].includes(priv.toLowerCase())) {
    throw invalidArgument(`Invalid security.privileged "${priv}": true or false`);
  }
  validateLimits(config);
  rawLxcLines(config["raw.lxc"] ?? "");
}

export async function readRecord(dir: string): Promise<InstanceRecord> {
  return JSON.parse(await readFile(join(dir, "instance.json"), "utf8")) as InstanceRecord;
}

export async function writeRecord(dir: string, record: InstanceRecord): Promise<void> {
  const file = join(dir, "instance.json");
  await writeFile(`${file}.tmp`, JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}
