// The gateway's tables, as versioned migrations applied through the replicated
// database's Migrate RPC (each migration is one log entry, so every replica changes
// its schema at the same index).
//
// The database has ONE schema version sequence for the whole cluster. The gateway is
// the first service to own tables, so this list is currently the cluster schema; when
// another service needs tables, move this list to a module every service imports and
// append to it (never renumber or edit a released migration).
import type { ClusterDatabaseClient } from "../../raft/src/node/database-client.ts";

/** What the gateway needs from the replicated database (ClusterDatabaseClient fits). */
export type Database = Pick<
  ClusterDatabaseClient,
  "exec" | "query" | "migrate" | "status" | "addNode" | "assignRole" | "removeNode" | "transferLeadership"
>;

/** `db` with its writes going through `exec` (and every other call straight to `db`). */
export function withExec(db: Database, exec: Database["exec"]): Database {
  return {
    exec,
    query: (sql, params, opts) => db.query(sql, params, opts),
    migrate: (m) => db.migrate(m),
    status: (address) => db.status(address),
    addNode: (id, address, role) => db.addNode(id, address, role),
    assignRole: (id, role) => db.assignRole(id, role),
    removeNode: (id) => db.removeNode(id),
    transferLeadership: (to) => db.transferLeadership(to),
  };
}

export interface Migration {
  version: number;
  statements: string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    statements: [
      // Server (cluster-wide) configuration, LXD's `config` of GET /1.0. Secrets such
      // as core.trust_password are stored hashed.
      "CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
      // Trusted client (and later server) certificates, by LXD fingerprint
      // (lowercase hex SHA-256 of the DER). `certificate` is PEM; `projects` a JSON array.
      `CREATE TABLE certificates (
        fingerprint TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        certificate TEXT NOT NULL,
        restricted INTEGER NOT NULL DEFAULT 0,
        projects TEXT NOT NULL DEFAULT '[]'
      )`,
    ],
  },
  {
    version: 2,
    statements: [
      // Background operations (LXD's /1.0/operations), so any gateway can answer for
      // them. Times are caller-supplied ISO-8601 strings; resources and metadata JSON
      // (or NULL). A trust token is a `token` operation whose metadata holds its
      // secret while it runs; the secret is dropped when it is used or cancelled.
      `CREATE TABLE operations (
        id TEXT PRIMARY KEY,
        class TEXT NOT NULL,
        description TEXT NOT NULL,
        status_code INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        may_cancel INTEGER NOT NULL,
        err TEXT NOT NULL DEFAULT '',
        location TEXT NOT NULL DEFAULT '',
        project TEXT NOT NULL DEFAULT '',
        resources TEXT,
        metadata TEXT
      )`,
      "CREATE INDEX operations_by_status ON operations (status_code, updated_at)",
      // The cluster's event stream (/1.0/events): written in the same batch as the
      // change it reports, read by every gateway in seq order. seq is computed inside
      // the write (max + 1), so all replicas agree; old rows are pruned by the writers.
      `CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        project TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL
      )`,
    ],
  },
  {
    version: 3,
    statements: [
      // LXD projects. `config` is a JSON object of strings (keys sorted). The `default`
      // project exists from the start, with LXD's default features.
      `CREATE TABLE projects (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        config TEXT NOT NULL DEFAULT '{}'
      )`,
      `INSERT INTO projects (name, description, config) VALUES ('default', 'Default LXD project',
        '{"features.images":"true","features.networks":"true","features.profiles":"true","features.storage.volumes":"true"}')`,
      // Profiles, per project (a project with features.profiles has its own). `config`
      // and `devices` are JSON objects.
      `CREATE TABLE profiles (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        config TEXT NOT NULL DEFAULT '{}',
        devices TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (project, name)
      )`,
      `INSERT INTO profiles (project, name, description, config, devices) VALUES ('default', 'default', 'Default LXD profile', '{}',
        '{"root":{"path":"/","pool":"default","type":"disk"}}')`,
    ],
  },
  {
    version: 4,
    statements: [
      // Cluster members. `node_id` is the member's database node id, fixed at join
      // (a rename changes `name` only). `address` is where its services listen
      // (database node and member service, "host:port"). `state`: 0 created, 1 pending
      // (accepted, not yet running; hidden from listings), 2 evacuated, as in LXD.
      // `heartbeat` is the ISO time of the last heartbeat it answered; `roles` the
      // roles an operator sets (event-hub, ovn-chassis), JSON; `config` JSON.
      `CREATE TABLE members (
        node_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL UNIQUE,
        architecture TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        failure_domain TEXT NOT NULL DEFAULT 'default',
        config TEXT NOT NULL DEFAULT '{}',
        roles TEXT NOT NULL DEFAULT '[]',
        state INTEGER NOT NULL DEFAULT 0,
        heartbeat TEXT NOT NULL
      )`,
      `CREATE TABLE cluster_groups (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT ''
      )`,
      "INSERT INTO cluster_groups (name, description) VALUES ('default', 'Default cluster group')",
      `CREATE TABLE cluster_group_members (
        group_name TEXT NOT NULL,
        node_id TEXT NOT NULL,
        PRIMARY KEY (group_name, node_id)
      )`,
      // Member-specific config of cluster objects (LXD's member_config), e.g. a
      // storage pool's `source` on each member.
      `CREATE TABLE member_config (
        node_id TEXT NOT NULL,
        entity TEXT NOT NULL,
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (node_id, entity, name, key)
      )`,
      // The coordinator fence: the member that coordinates and the Raft term it does
      // so in. Every coordinator write carries a precondition on this row, so a
      // deposed coordinator's late writes are refused.
      "CREATE TABLE coordinator (id INTEGER PRIMARY KEY CHECK (id = 1), node_id TEXT NOT NULL, term INTEGER NOT NULL)",
      "INSERT INTO coordinator (id, node_id, term) VALUES (1, '', 0)",
    ],
  },
  {
    version: 5,
    statements: [
      // Which instance driver a member's agent runs ("lxc" or "simulated"; "" until
      // it said). The agent answers on the member's `address` (same gRPC server).
      "ALTER TABLE members ADD COLUMN driver TEXT NOT NULL DEFAULT ''",
      // Images, per project (the project itself, or `default` for a project without
      // features.images). `properties` JSON; times ISO-8601 chosen by the writer.
      `CREATE TABLE images (
        project TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        filename TEXT NOT NULL DEFAULT '',
        size INTEGER NOT NULL,
        architecture TEXT NOT NULL,
        type TEXT NOT NULL DEFAULT 'container',
        properties TEXT NOT NULL DEFAULT '{}',
        public INTEGER NOT NULL DEFAULT 0,
        auto_update INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        uploaded_at TEXT NOT NULL,
        last_used_at TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (project, fingerprint)
      )`,
      `CREATE TABLE image_aliases (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (project, name)
      )`,
      // Which members hold an image file (by node id): where a member lacking it pulls from.
      `CREATE TABLE image_members (
        fingerprint TEXT NOT NULL,
        node_id TEXT NOT NULL,
        PRIMARY KEY (fingerprint, node_id)
      )`,
      // Instances: where each lives (`node_id`) and what the cluster knows of it. The
      // agent on that member runs it under `agent_name`. config/devices JSON objects,
      // profiles a JSON array; `power` the last state the cluster asked for or saw
      // (RUNNING / STOPPED; the member's agent is asked for the live state).
      `CREATE TABLE instances (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        node_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        type TEXT NOT NULL DEFAULT 'container',
        architecture TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        ephemeral INTEGER NOT NULL DEFAULT 0,
        config TEXT NOT NULL DEFAULT '{}',
        devices TEXT NOT NULL DEFAULT '{}',
        profiles TEXT NOT NULL DEFAULT '[]',
        image_fingerprint TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        last_used_at TEXT NOT NULL DEFAULT '',
        power TEXT NOT NULL DEFAULT 'STOPPED',
        PRIMARY KEY (project, name)
      )`,
      "CREATE INDEX instances_by_node ON instances (node_id)",
    ],
  },
  {
    version: 6,
    statements: [
      // The cluster certificate after `lxc cluster update-certificate` (no row: never
      // rotated; every process uses its files). Every member and gateway trusts
      // `certificate` and `previous` as soon as it sees the row, and presents
      // `certificate` from `switch_at` (ISO time) on, so peers never distrust each other.
      `CREATE TABLE cluster_certificate (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        certificate TEXT NOT NULL,
        key TEXT NOT NULL,
        previous TEXT NOT NULL,
        switch_at TEXT NOT NULL
      )`,
    ],
  },
  {
    version: 7,
    statements: [
      // Evacuation and restore plans (services/api/src/evacuation): one row per
      // `lxc cluster evacuate|restore`, written with the operation and the member's new
      // state; `status` running / done / failed. `id` is the operation's id.
      `CREATE TABLE evacuation_plans (
        id TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        action TEXT NOT NULL,
        mode TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'running',
        error TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`,
      // Its steps (planEvacuation / planRestore), in plan order. `status`: pending,
      // done or failed; a step's `done` is written in the same batch as the change
      // that completes it (for a copy: the instances row's new node_id).
      `CREATE TABLE evacuation_steps (
        plan_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        stop_first INTEGER NOT NULL DEFAULT 0,
        start_after INTEGER NOT NULL DEFAULT 0,
        origin TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'pending',
        error TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (plan_id, seq)
      )`,
    ],
  },
  {
    version: 8,
    statements: [
      // Evacuation plans are executed by the coordinator: `owner_term` is the Raft term
      // of the coordinator that claimed a plan. A coordinator of a newer term takes over
      // a running plan (its predecessor's writes are fenced by the coordinator row).
      "ALTER TABLE evacuation_plans ADD COLUMN owner_term INTEGER NOT NULL DEFAULT 0",
    ],
  },
  {
    version: 9,
    statements: [
      // Storage pools of the cluster (`lxc storage create|list|show|delete`). `dir` pools
      // are local to each member (member-specific `source`, defaulting to a directory of
      // the member's agent); `shared` pools are one path every member mounts. A pool
      // defined with `--target` only is PENDING until created cluster-wide.
      `CREATE TABLE storage_pools (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        config TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'CREATED'
      )`,
      `CREATE TABLE storage_pool_members (
        pool TEXT NOT NULL,
        node_id TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (pool, node_id)
      )`,
      "INSERT INTO storage_pools (name, driver) VALUES ('default', 'dir')",
      // The pool holding the instance's root disk (decides copy vs relocation on a move).
      "ALTER TABLE instances ADD COLUMN pool TEXT NOT NULL DEFAULT 'default'",
    ],
  },
];

/** Applies the migrations this gateway knows; fails if the database is newer than this code. */
export async function applySchema(db: Database): Promise<{ fromVersion: number; toVersion: number }> {
  return db.migrate(MIGRATIONS);
}
