// Certificate rotation at the gRPC layer: a server and clients built on LiveTls take
// a new trusted set and a new identity without a restart; a peer that was never told
// of the new certificate is refused.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { after, test } from "node:test";
import { generateCertificate, fingerprint } from "../../../raft/src/transport/certificate.ts";
import { serverCredentials } from "../../../raft/src/transport/credentials.ts";
import { LiveTls } from "../../../raft/src/transport/live-tls.ts";
import { addMemberService, MemberClients } from "../../src/cluster/member-service.ts";

const servers: grpc.Server[] = [];
after(() => servers.forEach((s) => s.forceShutdown()));

async function serve(tls: LiveTls): Promise<string> {
  const server = new grpc.Server();
  servers.push(server);
  addMemberService(server, { nodeId: "m1" });
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", serverCredentials(tls), (e, p) => (e ? rej(e) : res(p))));
  return `127.0.0.1:${port}`;
}

test("LiveTls: trust both, switch identities, and an uninformed peer is refused", async () => {
  const a = await generateCertificate({ commonName: "a", hosts: ["127.0.0.1"] });
  const b = await generateCertificate({ commonName: "b", hosts: ["127.0.0.1"] });
  const serverTls = new LiveTls({ cert: a.cert, key: a.key, ca: a.cert });
  const clientTls = new LiveTls({ cert: a.cert, key: a.key, ca: a.cert });
  const address = await serve(serverTls);
  const heartbeat = async (tls: ConstructorParameters<typeof MemberClients>[0]) => {
    const c = new MemberClients(tls);
    try {
      return await c.heartbeat(address, { coordinator: "x", term: 1, timeMs: 0 }, 2_000);
    } finally {
      c.close();
    }
  };
  assert.equal((await heartbeat(clientTls)).nodeId, "m1");

  // Phase 1: everybody trusts both. Phase 2: identities switch to b.
  serverTls.setTrusted([a.cert, b.cert]);
  clientTls.setTrusted([a.cert, b.cert]);
  serverTls.setIdentity(b.cert, b.key);
  assert.equal((await heartbeat(clientTls)).nodeId, "m1", "a client trusting a and b reaches the server presenting b");
  clientTls.setIdentity(b.cert, b.key);
  assert.equal((await heartbeat(clientTls)).nodeId, "m1", "the server trusts the client presenting b");
  assert.ok(clientTls.trusts(b.cert) && !new LiveTls({ cert: a.cert, key: a.key, ca: a.cert }).trusts(b.cert));

  // A peer that knows only a: the server's b certificate is refused.
  const stale = new LiveTls({ cert: a.cert, key: a.key, ca: a.cert });
  await assert.rejects(heartbeat(stale), /UNAVAILABLE|untrusted|certificate/i);
  assert.notEqual(fingerprint(a.cert), fingerprint(b.cert));
});
