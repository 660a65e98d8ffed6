// Runs a placement scriptlet against the live cluster: the candidates are the
// online members as `lxc cluster list` shows them, their resources and state are
// fetched from the members before the run (the interpreter never waits on I/O),
// and what the scriptlet logs is published as `logging` events.
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import {
  runPlacementScriptlet,
  type ClusterMemberCandidate,
  type ClusterMemberResources,
  type ClusterMemberState,
  type InstanceResources,
  type PlacementRequest,
  type PlacementResult,
} from "../../../placement/src/scriptlet/index.ts";
import type { MemberState } from "../../../../proto/gen/cluster.ts";
import { readStoredConfig } from "../config.ts";
import { listMembers, memberView } from "../cluster/members.ts";
import type { MemberClients } from "../cluster/member-service.ts";
import { clusterSettings } from "../cluster/settings.ts";
import { publishStatements, type LxdEvent } from "../events/events.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";

export const SCRIPTLET_KEY = "instances.placement.scriptlet";

export interface ScriptletRun extends PlacementResult {
  candidates: string[];
}

/** LXD's size suffixes for limits.memory and root disk sizes; 0 when unset or unreadable. */
function bytes(text: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGTPE]i?B|[kKMGTPE]B|B)?$/.exec((text ?? "").trim());
  if (!m) return 0;
  const unit = m[2] ?? "B";
  const power = "BKMGTPE".indexOf(unit[0].toUpperCase());
  const base = unit.includes("i") ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** Math.max(0, power));
}

function instanceResources(req: PlacementRequest): InstanceResources {
  const cpu = req.instance.config["limits.cpu"] ?? "";
  return {
    cpu_cores: /^\d+$/.test(cpu) ? Number(cpu) : 0,
    memory_size: bytes(req.instance.config["limits.memory"]),
    root_disk_size: bytes(req.instance.devices.root?.size),
  };
}

/** A member's state as LXD shows it (GET /1.0/cluster/members/<name>/state). */
export function stateOf(s: MemberState): ClusterMemberState {
  return {
    sysinfo: {
      uptime: s.uptimeSeconds,
      load_averages: [s.load1, s.load5, s.load15],
      processes: s.processes,
      total_ram: s.memoryTotal,
      free_ram: s.memoryFree,
      shared_ram: 0,
      buffered_ram: 0,
      total_swap: s.swapTotal,
      free_swap: s.swapTotal - s.swapUsed,
      logical_cpus: s.logicalCpus,
    },
    storage_pools: {},
  };
}

function resourcesOf(s: MemberState): ClusterMemberResources {
  return { cpu: { architecture: s.architecture, total: s.logicalCpus }, memory: { used: s.memoryUsed, total: s.memoryTotal } };
}

/**
 * A scriptlet ready to run synchronously many times (an evacuation places several
 * instances): the online members, their state fetched once, and the logs of every run
 * collected for publishing.
 */
export interface ScriptletSession {
  source: string;
  /** The online members, as candidates. */
  members: ClusterMemberCandidate[];
  run(request: PlacementRequest, candidates?: readonly string[]): ScriptletRun;
  /** Publishes every run's logs as `logging` events. */
  publishLogs(): Promise<void>;
}

/** A session for `source`, or the configured scriptlet; undefined when none is set and none was sent. */
export async function scriptletSession(db: Database, members: MemberClients, opts: { source?: string; location: string }): Promise<ScriptletSession | undefined> {
  const stored = await readStoredConfig(db);
  const source = opts.source ?? stored.get(SCRIPTLET_KEY);
  if (!source) return undefined;
  const { offlineThresholdMs } = clusterSettings(stored);
  const [rows, status] = await Promise.all([listMembers(db), db.status()]);
  const now = Date.now();
  const online = rows.filter((m) => memberView(m, status, now, offlineThresholdMs).status === "Online");
  const views: ClusterMemberCandidate[] = online.map((m) => memberView(m, status, now, offlineThresholdMs));
  const states = new Map<string, MemberState>();
  await Promise.all(
    online.map(async (m) => {
      const s = await members.state(m.address, 2_000).catch(() => undefined);
      if (s) states.set(m.name, s);
    }),
  );
  const need = (name: string) => {
    const s = states.get(name);
    if (!s) throw new Error(`no resources known for cluster member "${name}"`);
    return s;
  };
  const events: ExecStatement[] = [];
  return {
    source,
    members: views,
    run: (request, candidateNames) => {
      // The online members, or those the placement rules let through (target, scheduler, project).
      const candidates = candidateNames ? views.filter((v) => candidateNames.includes(v.server_name)) : views;
      const result = runPlacementScriptlet(source, request, candidates, {
        getClusterMemberResources: (name) => resourcesOf(need(name)),
        getClusterMemberState: (name) => stateOf(need(name)),
        getInstanceResources: () => instanceResources(request),
      });
      for (const l of result.logs) {
        const ev: LxdEvent = {
          type: "logging",
          timestamp: new Date().toISOString(),
          metadata: {
            message: l.message,
            level: l.level === "warn" ? "warning" : l.level,
            context: { scriptlet: SCRIPTLET_KEY, instance: request.instance.name, project: request.project, reason: request.reason },
          },
          location: opts.location,
        };
        events.push(...publishStatements(ev));
      }
      return { ...result, candidates: candidates.map((c) => c.server_name) };
    },
    publishLogs: async () => {
      const batch = events.splice(0);
      if (batch.length) await db.exec(batch);
    },
  };
}

/**
 * Runs `source` (default: the configured scriptlet) for `request` over the online
 * members (or `candidates` among them), publishing its logs as `logging` events
 * located at `location`.
 */
export async function runScriptlet(
  db: Database,
  members: MemberClients,
  opts: { source?: string; request: PlacementRequest; location: string; candidates?: readonly string[] },
): Promise<ScriptletRun> {
  const session = await scriptletSession(db, members, opts);
  if (!session) throw ApiError.badRequest(`No placement scriptlet: set ${SCRIPTLET_KEY} or send one`);
  const run = session.run(opts.request, opts.candidates);
  await session.publishLogs();
  return run;
}
