// Images as the cluster records them: `images` (per project), `image_aliases` and
// `image_members` (which members hold the file, by node id). The files themselves
// live in the members' agents (content-addressed: fingerprint = sha256 of the file).
import type { ExecStatement } from "../../../raft/src/node/database-client.ts";
import type { Param } from "../../../raft/src/db/param.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";

/** Go's zero time, as LXD prints an unset time. */
export const ZERO_TIME = "0001-01-01T00:00:00Z";

export interface ImageRow {
  project: string;
  fingerprint: string;
  filename: string;
  size: number;
  architecture: string;
  type: string;
  properties: Record<string, string>;
  public: boolean;
  autoUpdate: boolean;
  createdAt: string;
  uploadedAt: string;
  lastUsedAt: string;
}

export interface AliasRow {
  project: string;
  name: string;
  fingerprint: string;
  description: string;
}

/** LXD's api.Image. */
export interface ImageView {
  auto_update: boolean;
  properties: Record<string, string>;
  public: boolean;
  expires_at: string;
  profiles: string[];
  aliases: { name: string; description: string }[];
  architecture: string;
  cached: boolean;
  filename: string;
  fingerprint: string;
  size: number;
  type: string;
  created_at: string;
  last_used_at: string;
  uploaded_at: string;
}

const COLUMNS = "project, fingerprint, filename, size, architecture, type, properties, public, auto_update, created_at, uploaded_at, last_used_at";

function imageFromRow(r: Param[]): ImageRow {
  return {
    project: String(r[0]),
    fingerprint: String(r[1]),
    filename: String(r[2]),
    size: Number(r[3]),
    architecture: String(r[4]),
    type: String(r[5]),
    properties: JSON.parse(String(r[6])) as Record<string, string>,
    public: Number(r[7]) !== 0,
    autoUpdate: Number(r[8]) !== 0,
    createdAt: String(r[9]),
    uploadedAt: String(r[10]),
    lastUsedAt: String(r[11]),
  };
}

const aliasFromRow = (r: Param[]): AliasRow => ({ project: String(r[0]), name: String(r[1]), fingerprint: String(r[2]), description: String(r[3]) });

/** The project whose images a project uses: itself with features.images, else `default`. */
export async function imageProject(db: Pick<Database, "query">, project: string): Promise<string> {
  if (project === "default") return project;
  const r = await db.query("SELECT config FROM projects WHERE name = ?", [project]);
  if (!r.rows.length) throw ApiError.notFound("Project not found");
  const config = JSON.parse(String(r.rows[0][0])) as Record<string, string>;
  return ["true", "1", "yes", "on"].includes((config["features.images"] ?? "").toLowerCase()) ? project : "default";
}

export async function listImages(db: Pick<Database, "query">, project: string): Promise<ImageRow[]> {
  const r = await db.query(`SELECT ${COLUMNS} FROM images WHERE project = ? ORDER BY fingerprint`, [project]);
  return r.rows.map(imageFromRow);
}

/** An image by full fingerprint or unique prefix; 404 `Image not found`. */
export async function findImage(db: Pick<Database, "query">, project: string, fingerprint: string): Promise<ImageRow> {
  if (!/^[0-9a-f]{1,64}$/.test(fingerprint)) throw ApiError.notFound("Image not found");
  const r = await db.query(`SELECT ${COLUMNS} FROM images WHERE project = ? AND substr(fingerprint, 1, ?) = ? LIMIT 2`, [project, fingerprint.length, fingerprint]);
  if (!r.rows.length) throw ApiError.notFound("Image not found");
  if (r.rows.length > 1) throw ApiError.badRequest("More than one image matches");
  return imageFromRow(r.rows[0]);
}

export async function listAliases(db: Pick<Database, "query">, project: string, fingerprint?: string): Promise<AliasRow[]> {
  const r = fingerprint
    ? await db.query("SELECT project, name, fingerprint, description FROM image_aliases WHERE project = ? AND fingerprint = ? ORDER BY name", [project, fingerprint])
    : await db.query("SELECT project, name, fingerprint, description FROM image_aliases WHERE project = ? ORDER BY name", [project]);
  return r.rows.map(aliasFromRow);
}

export async function findAlias(db: Pick<Database, "query">, project: string, name: string): Promise<AliasRow> {
  const r = await db.query("SELECT project, name, fingerprint, description FROM image_aliases WHERE project = ? AND name = ?", [project, name]);
  if (!r.rows.length) throw ApiError.notFound("Image alias not found");
  return aliasFromRow(r.rows[0]);
}

export function imageView(i: ImageRow, aliases: AliasRow[]): ImageView {
  return {
    auto_update: i.autoUpdate,
    properties: i.properties,
    public: i.public,
    expires_at: ZERO_TIME,
    profiles: ["default"],
    aliases: aliases.map((a) => ({ name: a.name, description: a.description })),
    architecture: i.architecture,
    cached: false,
    filename: i.filename,
    fingerprint: i.fingerprint,
    size: i.size,
    type: i.type,
    created_at: i.createdAt,
    last_used_at: i.lastUsedAt || ZERO_TIME,
    uploaded_at: i.uploadedAt,
  };
}

export const aliasView = (a: AliasRow, type = "container") => ({ description: a.description, target: a.fingerprint, name: a.name, type });

export function insertImageStatements(i: ImageRow, nodeId: string): ExecStatement[] {
  return [
    {
      sql: `INSERT INTO images (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      params: [i.project, i.fingerprint, i.filename, i.size, i.architecture, i.type, JSON.stringify(i.properties), i.public ? 1 : 0, i.autoUpdate ? 1 : 0, i.createdAt, i.uploadedAt, i.lastUsedAt],
    },
    holderStatement(i.fingerprint, nodeId),
  ];
}

/** Records that a member holds an image file. */
export function holderStatement(fingerprint: string, nodeId: string): ExecStatement {
  return { sql: "INSERT OR IGNORE INTO image_members (fingerprint, node_id) VALUES (?, ?)", params: [fingerprint, nodeId] };
}

/** The node ids holding an image file. */
export async function imageHolders(db: Pick<Database, "query">, fingerprint: string): Promise<string[]> {
  const r = await db.query("SELECT node_id FROM image_members WHERE fingerprint = ? ORDER BY node_id", [fingerprint]);
  return r.rows.map((row) => String(row[0]));
}

/** LXD's image alias name rule (no slashes, not empty, no colon-prefixed remote syntax). */
export function validateAliasName(name: string): void {
  if (name === "") throw ApiError.badRequest("Alias name missing");
  if (name.includes("/")) throw ApiError.badRequest("Alias names may not contain slashes");
  if (/[\s\x00-\x1f\x7f]/.test(name)) throw ApiError.badRequest(`Invalid alias name "${name}"`);
}
