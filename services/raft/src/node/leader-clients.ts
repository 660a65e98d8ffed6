// One Database client per address, reused for calls a follower forwards to its leader.

import * as grpc from "@grpc/grpc-js";
import { DatabaseClient } from "../../../../proto/gen/database.ts";
import { CLIENT_CHANNEL_OPTIONS, clientCredentials } from "../transport/credentials.ts";
import type { TlsConfig } from "../transport/credentials.ts";

type UnaryMethod<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

export class LeaderClients {
  private clients = new Map<string, DatabaseClient>();
  private readonly creds: grpc.ChannelCredentials;

  constructor(tls: TlsConfig) {
    this.creds = clientCredentials(tls);
  }

  client(address: string): DatabaseClient {
    let c = this.clients.get(address);
    if (!c) {
      c = new DatabaseClient(address, this.creds, CLIENT_CHANNEL_OPTIONS);
      this.clients.set(address, c);
    }
    return c;
  }

  call<Req, Res>(address: string, method: string, req: Req, md: grpc.Metadata, deadline: grpc.Deadline): Promise<Res> {
    const client = this.client(address);
    const fn = (client as unknown as Record<string, UnaryMethod<Req, Res>>)[method];
    return new Promise((resolve, reject) => {
      fn.call(client, req, md, { deadline }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
