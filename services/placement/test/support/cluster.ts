// Test fixtures: cluster members as LXD shows them, and host data for scriptlets.
import type {
  ClusterMemberCandidate, ClusterMemberResources, ClusterMemberState, PlacementHostFunctions, PlacementRequest,
} from "../../src/scriptlet/index.ts";

export function member(name: string, extra: Partial<ClusterMemberCandidate> = {}): ClusterMemberCandidate {
  return {
    server_name: name,
    url: `https://10.0.0.${name.replace(/\D/g, "") || "1"}:8443`,
    roles: ["database"],
    architecture: "x86_64",
    failure_domain: "default",
    description: "",
    status: "Online",
    message: "Fully operational",
    config: {},
    groups: ["default"],
    database: true,
    ...extra,
  };
}

export function request(name: string, extra: Partial<PlacementRequest> = {}): PlacementRequest {
  return {
    instance: {
      name,
      project: "default",
      type: "container",
      config: { "limits.memory": "1GiB" },
      devices: { root: { path: "/", pool: "default", type: "disk" } },
      profiles: ["default"],
    },
    reason: "new",
    project: "default",
    ...extra,
  };
}

const GiB = 1024 ** 3;

/** Host functions over a table of free memory per member (GiB). */
export function hostWithFreeMemory(freeGiB: Record<string, number>): PlacementHostFunctions & { calls: string[] } {
  const calls: string[] = [];
  const known = (name: string) => {
    if (!Object.prototype.hasOwnProperty.call(freeGiB, name)) throw new Error(`Cluster member "${name}" not found`);
    return freeGiB[name];
  };
  return {
    calls,
    getClusterMemberResources(name: string): ClusterMemberResources {
      calls.push(`resources ${name}`);
      const free = known(name);
      return { cpu: { architecture: "x86_64", total: 8 }, memory: { used: (64 - free) * GiB, total: 64 * GiB } };
    },
    getClusterMemberState(name: string): ClusterMemberState {
      calls.push(`state ${name}`);
      const free = known(name);
      return {
        sysinfo: {
          uptime: 1000, load_averages: [0.5, 0.25, 0.125], processes: 200, total_ram: 64 * GiB, free_ram: free * GiB,
          shared_ram: 0, buffered_ram: 0, total_swap: 0, free_swap: 0, logical_cpus: 8,
        },
        storage_pools: { default: { space: { used: 10 * GiB, total: 100 * GiB }, inodes: { used: 1000, total: 100000 } } },
      };
    },
    getInstanceResources() {
      calls.push("instance");
      return { cpu_cores: 2, memory_size: GiB, root_disk_size: 10 * GiB };
    },
  };
}
