// /1.0/certificates: the trust store. An untrusted client becomes trusted with
// `core.trust_password` (`lxc remote add NAME URL --password P`): its TLS client
// certificate is added; or with a trust token (`lxc remote add NAME TOKEN`, see
// operations/tokens.ts). Trusted clients list, show, add and remove certificates
// and create tokens (`lxc config trust add`).
import os from "node:os";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { storedValue } from "../config.ts";
import { verifyPassword } from "../password.ts";
import { sendAsync, view } from "../operations/store.ts";
import { lifecycleEvent, publishStatements, requestor } from "../events/events.ts";
import { certificateInsert, createToken, failedAsAlreadyTrusted, findToken, looksLikeTokenSecret, notYetTrusted, redeemToken } from "../operations/tokens.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { getCertificate, listCertificates, parseCertificate, type TrustedCertificate } from "../trust.ts";

// Unknown fields are dropped (zod's default), as LXD ignores them.
const postSchema = z.object({
  type: z.string().optional(),
  name: z.string().optional(),
  password: z.string().optional(),
  certificate: z.string().optional(),
  token: z.boolean().optional(),
  restricted: z.boolean().optional(),
  projects: z.array(z.string()).nullish(),
});

/**
 * The addresses a token names (the client dials them): the HTTPS address, or when the
 * gateway listens on a wildcard, every non-loopback interface address with its port.
 */
export function tokenAddresses(bound: string): string[] {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(bound);
  if (!m || (m[1] !== "0.0.0.0" && m[1] !== "::")) return [bound];
  const port = m[2];
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || (m[1] === "0.0.0.0" && a.family !== "IPv4") || (a.family === "IPv6" && a.scopeid)) continue;
      out.push(a.family === "IPv6" ? `[${a.address}]:${port}` : `${a.address}:${port}`);
    }
  }
  return out.length ? out : [bound];
}

const recursionSchema = z.object({ recursion: z.enum(["0", "1", "2"]).optional() }).passthrough();

export function certificateRoutes(ctx: GatewayContext) {
  // LXD's certificate-created / certificate-deleted lifecycle events, written with the change.
  const event = (action: string, fp: string, req: FastifyRequest) =>
    publishStatements(lifecycleEvent({ action, source: `/1.0/certificates/${fp}`, location: ctx.serverName, requestor: requestor(req) }));

  async function addTrusted(c: TrustedCertificate, req: FastifyRequest): Promise<void> {
    try {
      await ctx.db.exec([certificateInsert(c), ...event("certificate-created", c.fingerprint, req)], { preconditions: [notYetTrusted(c.fingerprint)] });
    } catch (e) {
      if (failedAsAlreadyTrusted(e)) throw ApiError.badRequest("Certificate already in trust store");
      throw e;
    }
  }

  return async function (app: FastifyInstance) {
    app.get("/1.0/certificates", async (req, reply) => {
      const q = recursionSchema.safeParse(req.query);
      if (!q.success) throw ApiError.badRequest("invalid recursion value");
      const all = await listCertificates(ctx.db);
      if ((q.data.recursion ?? "0") === "0") return sendSync(reply, all.map((c) => `/1.0/certificates/${c.fingerprint}`));
      return sendSync(reply, all);
    });

    app.get<{ Params: { fingerprint: string } }>("/1.0/certificates/:fingerprint", async (req, reply) => {
      const c = await getCertificate(ctx.db, req.params.fingerprint);
      return sendSync(reply, c, { etag: c.fingerprint });
    });

    app.delete<{ Params: { fingerprint: string } }>("/1.0/certificates/:fingerprint", async (req, reply) => {
      const c = await getCertificate(ctx.db, req.params.fingerprint);
      await ctx.db.exec([{ sql: "DELETE FROM certificates WHERE fingerprint = ?", params: [c.fingerprint] }, ...event("certificate-deleted", c.fingerprint, req)]);
      ctx.trust.forget(c.fingerprint);
      return sendSync(reply, null);
    });

    app.post("/1.0/certificates", { config: { untrusted: true } }, async (req, reply) => {
      const parsed = postSchema.safeParse(req.body ?? null);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw ApiError.badRequest(`invalid request body${issue?.path.length ? ` at '${issue.path.join(".")}'` : ""}: ${issue?.message ?? "not an object"}`);
      }
      const body = parsed.data;
      const type = body.type || "client";
      if (type !== "client") throw ApiError.badRequest(`certificate type '${type}' is not supported yet`);

      if (body.token) {
        // `lxc config trust add [--name NAME]`: a token operation; the client prints the token.
        if (!req.trusted) throw ApiError.forbidden();
        const name = body.name ?? "";
        if (name === "") throw ApiError.badRequest("A client name must be provided for a trust token");
        const op = await createToken(ctx.db, {
          request: { name, restricted: body.restricted ?? false, projects: body.projects ?? [] },
          addresses: tokenAddresses(ctx.httpsAddress()),
          fingerprint: ctx.certFingerprint,
          location: ctx.serverName,
        });
        return sendAsync(reply, view(op));
      }

      if (!req.trusted) {
        // `lxc remote add NAME TOKEN` sends the whole token (or its secret) as the password. The
        // password is checked before anything else is looked at, and never echoed.
        const password = body.password ?? "";
        const token = await findToken(ctx.db, password);
        if (token) {
          const cert = req.clientCertificate;
          if (!cert) throw ApiError.badRequest("Can't use TLS data on non-TLS link");
          const request = (token.metadata?.request ?? {}) as { name?: string; restricted?: boolean; projects?: string[] };
          const fp = cert.fingerprint;
          await redeemToken(ctx.db, token, {
            fingerprint: fp,
            name: request.name || cert.commonName,
            type: "client",
            certificate: cert.pem,
            restricted: request.restricted ?? false,
            projects: request.projects ?? [],
          }, event("certificate-created", fp, req));
          return sendSync(reply, null, { status: 201, location: `/1.0/certificates/${fp}` });
        }
        const hash = await storedValue(ctx.db, "core.trust_password");
        const ok = hash !== undefined && password !== "" && (await verifyPassword(password, hash));
        if (!ok) {
          if (looksLikeTokenSecret(password)) throw new ApiError(403, "not authorized: the trust token is unknown, already used or revoked");
          throw ApiError.forbidden();
        }
      }

      const cert = body.certificate ? parseCertificate(body.certificate) : req.clientCertificate;
      if (!cert) throw ApiError.badRequest("Can't use TLS data on non-TLS link");
      await addTrusted({
        fingerprint: cert.fingerprint,
        name: body.name || cert.commonName,
        type,
        certificate: cert.pem,
        restricted: body.restricted ?? false,
        projects: body.projects ?? [],
      }, req);
      return sendSync(reply, null, { status: 201, location: `/1.0/certificates/${cert.fingerprint}` });
    });
  };
}
