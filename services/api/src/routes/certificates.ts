// /1.0/certificates: the trust store. An untrusted client becomes trusted with
// `core.trust_password` (`lxc remote add NAME URL --password P`): its TLS client
// certificate is added. Trusted clients list, show, add and remove certificates.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { storedValue } from "../config.ts";
import { verifyPassword } from "../password.ts";
import { ApiError, sendSync } from "../response.ts";
import type { GatewayContext } from "../server.ts";
import { addCertificate, deleteCertificate, getCertificate, listCertificates, parseCertificate } from "../trust.ts";

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

const recursionSchema = z.object({ recursion: z.enum(["0", "1", "2"]).optional() }).passthrough();

export function certificateRoutes(ctx: GatewayContext) {
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
      await deleteCertificate(ctx.db, c.fingerprint);
      return sendSync(reply, null);
    });

    app.post("/1.0/certificates", { config: { untrusted: true } }, async (req, reply) => {
      const parsed = postSchema.safeParse(req.body ?? null);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw ApiError.badRequest(`invalid request body${issue?.path.length ? ` at '${issue.path.join(".")}'` : ""}: ${issue?.message ?? "not an object"}`);
      }
      const body = parsed.data;
      if (body.token) throw new ApiError(501, "trust tokens are not implemented yet; use core.trust_password");
      const type = body.type || "client";
      if (type !== "client") throw ApiError.badRequest(`certificate type '${type}' is not supported yet`);

      if (!req.trusted) {
        // The password is checked before anything else is looked at, and never echoed.
        const hash = await storedValue(ctx.db, "core.trust_password");
        const ok = hash !== undefined && body.password !== undefined && body.password !== "" && (await verifyPassword(body.password, hash));
        if (!ok) throw ApiError.forbidden();
      }

      const cert = body.certificate ? parseCertificate(body.certificate) : req.clientCertificate;
      if (!cert) throw ApiError.badRequest("Can't use TLS data on non-TLS link");
      await addCertificate(ctx.db, {
        fingerprint: cert.fingerprint,
        name: body.name || cert.commonName,
        type,
        certificate: cert.pem,
        restricted: body.restricted ?? false,
        projects: body.projects ?? [],
      });
      return sendSync(reply, null, { status: 201, location: `/1.0/certificates/${cert.fingerprint}` });
    });
  };
}
