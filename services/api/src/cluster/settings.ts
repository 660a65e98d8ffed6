// The cluster-wide `cluster.*` server config keys (`lxc config set cluster.…`), their
// validation in LXD's words, and their parsed values with LXD's defaults.
import { z } from "zod";

const integer = (check: (n: number) => boolean, message: string) =>
  z.string().refine((v) => /^-?\d+$/.test(v) && check(Number(v)), message);

/** `3H`, `30M`, `1d 12H`: space-separated <n><unit>, units S M H d w m y each at most once. */
const EXPIRY_UNITS: Record<string, number> = { S: 1e3, M: 60e3, H: 3600e3, d: 86400e3, w: 7 * 86400e3, m: 30 * 86400e3, y: 365 * 86400e3 };

export function parseExpiry(text: string): number | undefined {
  let total = 0;
  const seen = new Set<string>();
  for (const part of text.trim().split(/\s+/)) {
    const m = /^(\d+)([SMHdwmy])$/.exec(part);
    if (!m || seen.has(m[2])) return undefined;
    seen.add(m[2]);
    total += Number(m[1]) * EXPIRY_UNITS[m[2]];
  }
  return total > 0 ? total : undefined;
}

export const CLUSTER_KEYS = {
  "cluster.offline_threshold": { schema: integer((n) => n >= 10, "Value must be greater than '10'") },
  "cluster.max_voters": { schema: integer((n) => n >= 3 && n % 2 === 1, "Value must be an odd number equal to or higher than 3") },
  "cluster.max_standby": { schema: integer((n) => n >= 0 && n <= 5, "Value must be between 0 and 5") },
  "cluster.join_token_expiry": { schema: z.string().refine((v) => parseExpiry(v) !== undefined, "Invalid expiry expression") },
  // Shoal's own: how many instances an evacuation or restore moves at once.
  "cluster.evacuate_concurrency": { schema: integer((n) => n >= 1 && n <= 64, "Value must be between 1 and 64") },
};

/** Instances an evacuation or restore moves at once (cluster.evacuate_concurrency). */
export const DEFAULT_EVACUATE_CONCURRENCY = 16;

export function evacuateConcurrency(stored: Map<string, string>): number {
  return stored.has("cluster.evacuate_concurrency") ? Number(stored.get("cluster.evacuate_concurrency")) : DEFAULT_EVACUATE_CONCURRENCY;
}

export interface ClusterSettings {
  offlineThresholdMs: number;
  maxVoters: number;
  maxStandby: number;
  joinTokenExpiryMs: number;
}

export const DEFAULT_CLUSTER_SETTINGS: ClusterSettings = { offlineThresholdMs: 20_000, maxVoters: 3, maxStandby: 2, joinTokenExpiryMs: 3 * 3600e3 };

/** The settings from the stored config rows (validated when they were set). */
export function clusterSettings(stored: Map<string, string>): ClusterSettings {
  const num = (k: string, d: number) => (stored.has(k) ? Number(stored.get(k)) : d);
  return {
    offlineThresholdMs: num("cluster.offline_threshold", 20) * 1000,
    maxVoters: num("cluster.max_voters", DEFAULT_CLUSTER_SETTINGS.maxVoters),
    maxStandby: num("cluster.max_standby", DEFAULT_CLUSTER_SETTINGS.maxStandby),
    joinTokenExpiryMs: parseExpiry(stored.get("cluster.join_token_expiry") ?? "3H") ?? DEFAULT_CLUSTER_SETTINGS.joinTokenExpiryMs,
  };
}
