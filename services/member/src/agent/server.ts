// The agent's gRPC server: MemberAgent over mutual TLS with the cluster
// certificate (the same credentials as the Raft transport, imported from there).
import * as grpc from "@grpc/grpc-js";
import { MemberAgentService as MemberAgentDefinition } from "../../../../proto/gen/member.ts";
import { SERVER_OPTIONS, serverCredentials, type TlsConfig } from "../../../raft/src/transport/credentials.ts";
import type { Member } from "./member.ts";
import { MemberAgentService } from "./service.ts";

export interface MemberServer {
  /** host:port actually bound (the port resolved when 0 was asked). */
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `member` on `listen` (host:port; port 0 picks a free one). */
export async function serveMember(member: Member, listen: string, tls: TlsConfig): Promise<MemberServer> {
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(MemberAgentDefinition, new MemberAgentService(member, { tls }).handlers());
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listen, serverCredentials(tls), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = listen.slice(0, listen.lastIndexOf(":"));
  return {
    address: `${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // Give open calls (an exec, a transfer) a moment, then cut them.
        const timer = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
