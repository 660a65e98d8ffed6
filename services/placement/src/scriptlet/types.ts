// The data a placement scriptlet sees, with LXD's JSON field names (shared/api in
// LXD, as summarised in ../shared/reference/lxd-clustering.md §2 and §9.4). The
// gateway builds these from the database and the members' heartbeats.

/** Why an instance needs a member: LXD's scriptlet `request.reason`. */
export type PlacementReason = "new" | "evacuation" | "relocation";

/** The instance being placed (InstancesPost with expanded config and devices). */
export interface PlacementInstance {
  name: string;
  project: string;
  /** "container" or "virtual-machine". */
  type: string;
  architecture?: string;
  description?: string;
  /** Expanded config (profiles applied). */
  config: Record<string, string>;
  /** Expanded devices: device name -> device config. */
  devices: Record<string, Record<string, string>>;
  profiles?: string[];
  ephemeral?: boolean;
  stateful?: boolean;
  /** Where the instance comes from (image alias/fingerprint, copy, migration). */
  source?: Record<string, unknown>;
}

export interface PlacementRequest {
  instance: PlacementInstance;
  reason: PlacementReason;
  project: string;
  /** "--target" as given: a member name or "@group"; absent for automatic placement. */
  target?: string;
}

/** A cluster member as GET /1.0/cluster/members/<name> shows it (api.ClusterMember). */
export interface ClusterMemberCandidate {
  server_name: string;
  url: string;
  roles: string[];
  architecture: string;
  failure_domain: string;
  description: string;
  /** "Online", "Offline", "Evacuated", ... */
  status: string;
  message: string;
  config: Record<string, string>;
  groups: string[];
  database: boolean;
}

/** GET /1.0/resources of a member (api.Resources), the parts scriptlets use. */
export interface ClusterMemberResources {
  cpu: { architecture: string; total: number; sockets?: Record<string, unknown>[] };
  memory: { used: number; total: number; hugepages_total?: number; hugepages_used?: number };
  gpu?: { total: number; cards?: Record<string, unknown>[] };
  network?: { total: number; cards?: Record<string, unknown>[] };
  storage?: { total: number; disks?: Record<string, unknown>[] };
  system?: Record<string, unknown>;
}

/** api.ClusterMemberSysInfo. */
export interface ClusterMemberSysInfo {
  uptime: number;
  load_averages: number[];
  processes: number;
  total_ram: number;
  free_ram: number;
  shared_ram: number;
  buffered_ram: number;
  total_swap: number;
  free_swap: number;
  logical_cpus: number;
}

/** api.StoragePoolState. */
export interface StoragePoolState {
  space: { used: number; total: number };
  inodes: { used: number; total: number };
}

/** GET /1.0/cluster/members/<name>/state (api.ClusterMemberState). */
export interface ClusterMemberState {
  sysinfo: ClusterMemberSysInfo;
  storage_pools: Record<string, StoragePoolState>;
}

/** What the instance asks for (api.InstanceResources): limits.cpu, limits.memory, root disk size. */
export interface InstanceResources {
  cpu_cores: number;
  memory_size: number;
  root_disk_size: number;
}

/**
 * Data the scriptlet may ask for. Calls are synchronous: the gateway fetches the
 * candidates' resources and state before running the scriptlet (the interpreter
 * never waits on I/O). A function that is absent makes the scriptlet's call fail
 * with a clear error; a function that throws fails it with the thrown message.
 */
export interface PlacementHostFunctions {
  getClusterMemberResources?(memberName: string): ClusterMemberResources;
  getClusterMemberState?(memberName: string): ClusterMemberState;
  getInstanceResources?(): InstanceResources;
}

export type ScriptletLogLevel = "info" | "warn" | "error";

/** One line a scriptlet logged; the gateway publishes these as `logging` events. */
export interface ScriptletLog {
  level: ScriptletLogLevel;
  message: string;
}

export interface PlacementResult {
  /** The member chosen with set_target; absent when the run failed. */
  target?: string;
  logs: ScriptletLog[];
  /** "scriptlet:LINE:COL: what went wrong" (or without a position when there is none). */
  error?: string;
}

export type ValidationResult =
  | { ok: true }
  | { ok: false; error: string; line?: number; column?: number };
