// Small helpers shared by the object routes (projects, profiles, storage pools,
// networks): ETags, If-Match, recursion and the `?project=` check.
import { createHash } from "node:crypto";
import type { FastifyRequest } from "fastify";
import * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import { DatabaseClientError } from "../../../raft/src/node/database-client.ts";
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";

/** An ETag (unquoted) of what LXD hashes for an object (e.g. [description, config]). */
export function etagOf(parts: unknown): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

export function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** The If-Match header, when the client sent a non-empty one. */
export function ifMatch(req: FastifyRequest): string | undefined {
  const h = req.headers["if-match"];
  return h === undefined || h === "" ? undefined : unquote(h);
}

/** 412 when If-Match is present and differs from the current ETag. */
export function checkIfMatch(req: FastifyRequest, current: string): void {
  const want = ifMatch(req);
  if (want !== undefined && want !== current) throw new ApiError(412, `ETag doesn't match: ${current} vs ${want}`);
}

/** Maps a failed database precondition (the row changed meanwhile) to a 412. */
export function preconditionAs412(e: unknown, what: string): never {
  if (e instanceof DatabaseClientError && e.code === grpc.status.FAILED_PRECONDITION) {
    throw new ApiError(412, `ETag doesn't match: the ${what} changed meanwhile`);
  }
  throw e;
}

const listQuery = z.object({ recursion: z.enum(["0", "1", "2"]).optional() }).passthrough();

/** recursion=0 (URLs) or more (objects); anything else is a 400. */
export function recursive(req: FastifyRequest): boolean {
  const q = listQuery.safeParse(req.query);
  if (!q.success) throw ApiError.badRequest("invalid recursion value");
  return (q.data.recursion ?? "0") !== "0";
}

/** A query parameter as a string ("" when absent). */
export function queryParam(req: FastifyRequest, name: string): string {
  const v = (req.query as Record<string, unknown> | undefined)?.[name];
  return typeof v === "string" ? v : "";
}

/** `?project=` (default "default"); 404 `Project not found` when it does not exist. */
export async function requestProject(db: Database, req: FastifyRequest): Promise<string> {
  const name = queryParam(req, "project") || "default";
  const r = await db.query("SELECT 1 FROM projects WHERE name = ?", [name]);
  if (!r.rows.length) throw ApiError.notFound("Project not found");
  return name;
}

/** A zod failure as a 400 naming where it was. */
export function badBody(error: z.ZodError): ApiError {
  const issue = error.issues[0];
  return ApiError.badRequest(`invalid request body${issue?.path.length ? ` at '${issue.path.join(".")}'` : ""}: ${issue?.message ?? "not an object"}`);
}

/** A JSON object of strings, keys sorted (how config maps are stored). */
export function sortedJson(obj: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}
