// Which driver an agent runs. `lxc` is the default wherever LXC is installed; the
// simulated driver is only ever chosen explicitly, never as a silent fallback.
import { join } from "node:path";
import { unavailable } from "../errors.ts";
import type { InstanceDriver } from "./driver.ts";
import { LxcDriver } from "./lxc/lxc-driver.ts";
import { SimulatedDriver } from "./simulated/simulated-driver.ts";

export type DriverChoice = "lxc" | "simulated" | InstanceDriver;

/** Builds the driver for an agent whose state directory is `dir`; refuses lxc where it cannot work. */
export async function selectDriver(choice: DriverChoice, dir: string): Promise<InstanceDriver> {
  if (typeof choice !== "string") return choice;
  if (choice === "simulated") return new SimulatedDriver();
  const lxc = new LxcDriver(join(dir, "lxc"));
  const problem = await lxc.preflight();
  if (problem) throw unavailable(`The lxc driver cannot run on this host: ${problem}. Start the agent with driver "simulated" to run without containers.`);
  return lxc;
}
