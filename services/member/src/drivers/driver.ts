// The instance driver interface: what the agent asks of whatever runs instances on
// this host. The agent owns the records, pools and images; a driver only turns a
// record plus a rootfs directory into a running (or stopped) instance.
import type { Readable } from "node:stream";

export type DriverName = "lxc" | "simulated";

export type InstanceStatusWord = "Running" | "Stopped" | "Frozen" | "Error";

/** LXD's status codes for the words above. */
export const STATUS_CODES: Record<InstanceStatusWord, number> = {
  Running: 103,
  Stopped: 102,
  Frozen: 110,
  Error: 112,
};

/** A uid/gid shift applied to a rootfs: container id 0..size-1 is host id hostBase.. */
export interface IdMap {
  hostBase: number;
  size: number;
}

/** The unprivileged default, as on this project's hosts and in LXD's documentation. */
export const DEFAULT_IDMAP: IdMap = { hostBase: 1_000_000, size: 65_536 };

/**
 * The agent's durable record of an instance: instance.json in the instance's
 * directory in its pool. The cluster database holds the authoritative copy; this
 * one lets the agent start the instance after a restart and travels with it.
 */
export interface InstanceRecord {
  name: string;
  type: "container";
  architecture: string;
  imageFingerprint: string;
  /** The image's metadata properties at creation (os, release, description, stop_signal...). */
  imageProperties: Record<string, string>;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  /** ms since the epoch, chosen by the caller. */
  createdAt: number;
  /** The ownership shift currently applied to the rootfs on disk (null: unshifted). */
  idmap: IdMap | null;
}

/** Where an instance lives on this host. */
export interface InstancePaths {
  /** The instance's directory in its pool: instance.json and rootfs/. */
  dir: string;
  rootfs: string;
}

export interface NetworkAddressInfo {
  family: "inet" | "inet6";
  address: string;
  netmask: string;
  scope: string;
}

export interface RuntimeState {
  status: InstanceStatusWord;
  /** init's pid on the host; 0 when stopped; -1 for simulated instances. */
  pid: number;
  /** -1 when unknown. */
  processes: number;
  memoryUsage: number;
  cpuUsageNs: number;
  network: { name: string; addresses: NetworkAddressInfo[] }[];
}

export interface ExecOptions {
  command: string[];
  env: Record<string, string>;
  /** Empty: the instance's default. */
  cwd: string;
  interactive: boolean;
  window?: { width: number; height: number };
  uid: number;
  gid: number;
}

/** A running command. Its output streams end before `exited` resolves. */
export interface ExecProcess {
  stdout: Readable;
  /** Empty in interactive mode (a terminal merges both). */
  stderr: Readable;
  writeStdin(chunk: Uint8Array): void;
  closeStdin(): void;
  signal(signal: number): void;
  resize(width: number, height: number): void;
  /** The command's exit code; 128+N when a signal N killed it. */
  exited: Promise<number>;
}

export interface StopOptions {
  timeoutMs: number;
  force: boolean;
}

export interface InstanceDriver {
  readonly name: DriverName;
  readonly version: string;
  /** Whether instances need a real rootfs unpacked from their image. */
  readonly needsRootfs: boolean;
  /** Why this driver cannot run instances on this host, or undefined when it can. */
  preflight(): Promise<string | undefined>;
  /**
   * Makes an unpacked (or received) rootfs fit the record's config: shifts file
   * ownership into the id map an unprivileged instance needs, or back for a
   * privileged one. Returns the id map now applied on disk.
   */
  prepareRootfs(record: InstanceRecord, paths: InstancePaths): Promise<IdMap | null>;
  start(record: InstanceRecord, paths: InstancePaths): Promise<void>;
  /** Clean stop within timeoutMs, else kill. `clean` says which happened. */
  stop(record: InstanceRecord, paths: InstancePaths, opts: StopOptions): Promise<{ clean: boolean }>;
  state(record: InstanceRecord, paths: InstancePaths): Promise<RuntimeState>;
  exec(record: InstanceRecord, paths: InstancePaths, opts: ExecOptions): Promise<ExecProcess>;
  /** Names of the running instances, in one call (for listings and heartbeats). */
  runningNames(names: string[]): Promise<Set<string>>;
  /** Removes the driver's runtime files for a stopped instance (not the rootfs: the pool owns it). */
  forget(record: InstanceRecord): Promise<void>;
}

export function isPrivileged(config: Record<string, string>): boolean {
  return (config["security.privileged"] ?? "false").toLowerCase() === "true";
}

/** The id map an instance's config asks for. */
export function wantedIdMap(config: Record<string, string>): IdMap | null {
  return isPrivileged(config) ? null : DEFAULT_IDMAP;
}
