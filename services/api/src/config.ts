// Server configuration (`config` of GET /1.0, `lxc config set/get/unset`), stored
// in the replicated `config` table. Every key is declared here with a zod schema:
// an unknown key or a bad value is a 400 naming the key, in LXD's words
// ("cannot set 'KEY' to 'VALUE': REASON").
import { createHash } from "node:crypto";
import { z } from "zod";
import type { ExecPrecondition, ExecStatement } from "../../raft/src/node/database-client.ts";
import { CLUSTER_KEYS } from "./cluster/settings.ts";
import { scriptletSchema } from "./placement/scriptlet-key.ts";
import { hashPassword } from "./password.ts";
import { ApiError } from "./response.ts";
import type { Database } from "./schema.ts";

interface KeySpec {
  /** Validates a value being set (never called for "" = unset). */
  schema: z.ZodType<string>;
  /** Stored hashed; shown as `true`; a PUT carrying `true` keeps the current value. */
  secret?: boolean;
  /** Not stored: reported by this gateway from its own settings, and only accepted unchanged. */
  derived?: boolean;
  /** A long value (a script): error messages name the key, not the whole value. */
  long?: boolean;
}

const KEYS: Record<string, KeySpec> = {
  "core.trust_password": { schema: z.string().max(1024, "Value is too long"), secret: true },
  "core.https_address": { schema: z.string(), derived: true },
  ...CLUSTER_KEYS,
  "instances.placement.scriptlet": { schema: scriptletSchema, long: true },
};

/** Reads the stored config rows (linearizable). */
export async function readStoredConfig(db: Database): Promise<Map<string, string>> {
  const r = await db.query("SELECT key, value FROM config ORDER BY key");
  return new Map(r.rows.map(([k, v]) => [String(k), String(v)]));
}

/** One string that changes whenever the stored config does; checked again inside a write. */
const DIGEST_SQL = "SELECT coalesce(group_concat(key || '=' || value, char(10)), '') FROM (SELECT key, value FROM config ORDER BY key)";

function digest(stored: Map<string, string>): string {
  return [...stored].map(([k, v]) => `${k}=${v}`).join("\n");
}

export interface ConfigView {
  /** What GET /1.0 shows as `config`. */
  config: Record<string, string | true>;
  /** Its ETag (unquoted). */
  etag: string;
  stored: Map<string, string>;
}

export function configView(stored: Map<string, string>, derived: Record<string, string>): ConfigView {
  const config: Record<string, string | true> = {};
  for (const [k, v] of stored) config[k] = KEYS[k]?.secret ? true : v;
  for (const [k, v] of Object.entries(derived)) if (v) config[k] = v;
  const sorted = Object.fromEntries(Object.entries(config).sort(([a], [b]) => a.localeCompare(b)));
  const etag = createHash("sha256").update(JSON.stringify([digest(stored), sorted])).digest("hex");
  return { config: sorted, etag, stored };
}

const bodySchema = z.object({ config: z.record(z.string(), z.unknown()).nullish() }).passthrough();

function show(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * The write for PUT (replace: keys left out are unset) or PATCH (merge) of /1.0.
 * Throws ApiError(400) naming the first bad key; returns no statements when nothing changes.
 */
export async function planConfigWrite(
  body: unknown,
  mode: "put" | "patch",
  current: ConfigView,
  derived: Record<string, string>,
): Promise<ExecStatement[]> {
  const parsed = bodySchema.safeParse(body);
  if (!parsed.success) throw ApiError.badRequest(`invalid request body: ${parsed.error.issues[0]?.message ?? "not an object"}`);
  const requested = parsed.data.config ?? {};
  const statements: ExecStatement[] = [];
  for (const [key, value] of Object.entries(requested)) {
    const spec = KEYS[key];
    if (!spec) throw ApiError.badRequest(`cannot set '${key}' to '${show(value)}': unknown key`);
    if (spec.secret && value === true) continue; // "keep the current secret"
    if (value === null || value === "") {
      if (spec.derived) {
        if (derived[key]) throw ApiError.badRequest(`cannot set '${key}' to '': it is set by the gateway's command line`);
        continue;
      }
      statements.push({ sql: "DELETE FROM config WHERE key = ?", params: [key] });
      continue;
    }
    if (typeof value !== "string") throw ApiError.badRequest(`cannot set '${key}' to '${show(value)}': value must be a string`);
    const ok = spec.schema.safeParse(value);
    if (!ok.success) {
      const reason = ok.error.issues[0]?.message ?? "invalid value";
      throw ApiError.badRequest(spec.long ? `cannot set '${key}': ${reason}` : `cannot set '${key}' to '${value}': ${reason}`);
    }
    if (spec.derived) {
      if (value !== derived[key]) throw ApiError.badRequest(`cannot set '${key}' to '${value}': it is set by the gateway's command line`);
      continue;
    }
    const stored = spec.secret ? await hashPassword(value) : value;
    statements.push({ sql: "INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", params: [key, stored] });
  }
  if (mode === "put") {
    for (const key of current.stored.keys()) {
      if (!(key in requested)) statements.push({ sql: "DELETE FROM config WHERE key = ?", params: [key] });
    }
  }
  return statements;
}

/** Precondition: the stored config is still what `view` was computed from (for If-Match). */
export function unchangedSince(view: ConfigView): ExecPrecondition {
  return { sql: DIGEST_SQL, expectValue: digest(view.stored), message: "the server configuration changed meanwhile" };
}

/** The stored value of one key (e.g. the trust password hash), or undefined. */
export async function storedValue(db: Database, key: string): Promise<string | undefined> {
  const r = await db.query("SELECT value FROM config WHERE key = ?", [key]);
  return r.rows.length ? String(r.rows[0][0]) : undefined;
}
