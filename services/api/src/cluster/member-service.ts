// The ClusterMember gRPC service every member serves beside its database node
// (proto/cluster.proto), and the client the coordinator and gateways call it with.
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import * as grpc from "@grpc/grpc-js";
import {
  ClusterMemberClient,
  ClusterMemberService,
  type EventsRequest,
  type RelayEventsReply,
  type RelayEventsRequest,
  type HeartbeatReply,
  type HeartbeatRequest,
  type MemberEvent,
  type MemberState,
} from "../../../../proto/gen/cluster.ts";
import { CLIENT_CHANNEL_OPTIONS, clientCredentials, type TlsConfig } from "../../../raft/src/transport/credentials.ts";

const ARCHITECTURES: Record<string, string> = { x64: "x86_64", arm64: "aarch64", arm: "armv7l", ia32: "i686", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };

/** This host's architecture in LXD's naming. */
export function hostArchitecture(): string {
  return ARCHITECTURES[process.arch] ?? process.arch;
}

export interface MemberServiceHooks {
  nodeId: string;
  /** Called with each heartbeat (the coordinator and its term). */
  onHeartbeat?(req: HeartbeatRequest): void;
  /** Called when the cluster removed this member and asks it to stop. */
  onLeave?(): void;
  /** Streams this member's events to a gateway (events/member-events.ts); none without it. */
  events?(call: grpc.ServerWritableStream<EventsRequest, MemberEvent>): void;
  /** A gateway's logging events for the other gateways' streams; resolves to how many listen. */
  relayEvents?(gateway: string, bodies: string[]): number;
}

export function addMemberService(server: grpc.Server, hooks: MemberServiceHooks): void {
  server.addService(ClusterMemberService, {
    heartbeat: (call: grpc.ServerUnaryCall<HeartbeatRequest, HeartbeatReply>, callback: grpc.sendUnaryData<HeartbeatReply>) => {
      hooks.onHeartbeat?.(call.request);
      callback(null, { nodeId: hooks.nodeId, architecture: hostArchitecture(), timeMs: Date.now() });
    },
    state: (_call: grpc.ServerUnaryCall<unknown, MemberState>, callback: grpc.sendUnaryData<MemberState>) => {
      callback(null, readHostState(hooks.nodeId));
    },
    leave: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<Record<string, never>>) => {
      callback(null, {});
      // After the reply is on its way.
      setImmediate(() => hooks.onLeave?.());
    },
    events: (call: grpc.ServerWritableStream<EventsRequest, MemberEvent>) => (hooks.events ? hooks.events(call) : call.end()),
    relayEvents: (call: grpc.ServerUnaryCall<RelayEventsRequest, RelayEventsReply>, callback: grpc.sendUnaryData<RelayEventsReply>) => {
      callback(null, { listeningGateways: hooks.relayEvents?.(call.request.gateway, call.request.bodies) ?? 0 });
    },
  });
}

/** Resources and load of this host, from os and /proc. */
export function readHostState(nodeId: string): MemberState {
  const meminfo = readMeminfo();
  const [load1, load5, load15] = os.loadavg();
  let processes = 0;
  try {
    processes = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).length;
  } catch {
    // not Linux: left at 0
  }
  const total = os.totalmem();
  const free = meminfo.MemAvailable ?? os.freemem();
  return {
    nodeId,
    architecture: hostArchitecture(),
    logicalCpus: os.cpus().length,
    memoryTotal: total,
    memoryUsed: total - free,
    memoryFree: free,
    swapTotal: meminfo.SwapTotal ?? 0,
    swapUsed: (meminfo.SwapTotal ?? 0) - (meminfo.SwapFree ?? 0),
    load1,
    load5,
    load15,
    uptimeSeconds: Math.floor(os.uptime()),
    processes,
    osName: os.type(),
    kernelVersion: os.release(),
  };
}

function readMeminfo(): Record<string, number> {
  try {
    const out: Record<string, number> = {};
    for (const line of readFileSync("/proc/meminfo", "utf8").split("\n")) {
      const m = /^(\w+):\s+(\d+) kB/.exec(line);
      if (m) out[m[1]] = Number(m[2]) * 1024;
    }
    return out;
  } catch {
    return {};
  }
}

/** Calls members' ClusterMember services, one channel per address. */
export class MemberClients {
  private readonly clients = new Map<string, ClusterMemberClient>();
  private readonly creds: grpc.ChannelCredentials;

  constructor(tls: TlsConfig) {
    this.creds = clientCredentials(tls);
  }

  private client(address: string): ClusterMemberClient {
    let c = this.clients.get(address);
    if (!c) {
      c = new ClusterMemberClient(address, this.creds, CLIENT_CHANNEL_OPTIONS);
      this.clients.set(address, c);
    }
    return c;
  }

  heartbeat(address: string, req: HeartbeatRequest, timeoutMs: number): Promise<HeartbeatReply> {
    return new Promise((resolve, reject) => {
      this.client(address).heartbeat(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  state(address: string, timeoutMs: number): Promise<MemberState> {
    return new Promise((resolve, reject) => {
      this.client(address).state({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  /** The member's event stream (types wanted; empty = all), open until cancelled; `gateway`: the asking gateway's id. */
  events(address: string, types: string[], gateway = ""): grpc.ClientReadableStream<MemberEvent> {
    return this.client(address).events({ types, gateway });
  }

  /** Hands a gateway's logging events to a member for the other gateways; resolves to how many listen there. */
  relayEvents(address: string, gateway: string, bodies: string[], timeoutMs = 2_000): Promise<number> {
    return new Promise((resolve, reject) => {
      this.client(address).relayEvents({ gateway, bodies }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res.listeningGateways)));
    });
  }

  leave(address: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client(address).leave({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
