// The MemberAgent gRPC service: a thin adapter from proto/member.proto to the
// agent core (member.ts). Conversions and stream plumbing only; no decisions.
import * as grpc from "@grpc/grpc-js";
import { once } from "node:events";
import type { Readable } from "node:stream";
import * as pb from "../../../../proto/gen/member.ts";
import type { TlsConfig } from "../../../raft/src/transport/credentials.ts";
import type { InstanceStatusWord, RuntimeState } from "../drivers/driver.ts";
import { AgentError, invalidArgument, type AgentErrorKind } from "../errors.ts";
import type { FileEntry } from "../files/instance-files.ts";
import type { ImageEntry } from "../images/image-store.ts";
import type { InstanceStreamItem } from "../migration/instance-tar.ts";
import type { PoolDriver } from "../storage/pool.ts";
import { MemberClient } from "./client.ts";
import type { InstanceView, ListedStatus, Member } from "./member.ts";

/** Data chunks on the wire: well under the 4 MiB default message limit. */
export const CHUNK_SIZE = 1 << 20;

const CODES: Record<AgentErrorKind, grpc.status> = {
  "not-found": grpc.status.NOT_FOUND,
  "already-exists": grpc.status.ALREADY_EXISTS,
  "failed-precondition": grpc.status.FAILED_PRECONDITION,
  "invalid-argument": grpc.status.INVALID_ARGUMENT,
  "data-loss": grpc.status.DATA_LOSS,
  unavailable: grpc.status.UNAVAILABLE,
  "permission-denied": grpc.status.PERMISSION_DENIED,
};

export type StatusError = Error & { code: grpc.status; details: string };

export function toStatus(err: unknown): StatusError {
  if (err instanceof AgentError) return Object.assign(new Error(err.message), { code: CODES[err.kind], details: err.message });
  const e = err as Partial<StatusError>;
  if (err instanceof Error && typeof e.code === "number") return Object.assign(err, { details: e.details ?? err.message }) as StatusError;
  const msg = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(msg), { code: grpc.status.INTERNAL, details: msg });
}

const STATUS_ENUM: Record<InstanceStatusWord, pb.InstanceStatus> = {
  Running: pb.InstanceStatus.RUNNING,
  Stopped: pb.InstanceStatus.STOPPED,
  Frozen: pb.InstanceStatus.FROZEN,
  Error: pb.InstanceStatus.ERROR,
};

export function instanceInfo(v: InstanceView, member: string, driver: string): pb.InstanceInfo {
  const r = v.record;
  return {
    name: r.name,
    type: r.type,
    architecture: r.architecture,
    status: STATUS_ENUM[v.status],
    statusText: v.status,
    statusCode: v.statusCode,
    config: r.config,
    devices: Object.fromEntries(Object.entries(r.devices).map(([k, d]) => [k, { entries: d }])),
    imageFingerprint: r.imageFingerprint,
    pool: v.pool.name,
    location: member,
    createdAt: r.createdAt,
    driver,
    privileged: r.idmap === null && driver !== "simulated",
  };
}

/** ListInstances' brief entry: name and status only. */
function briefInfo(s: ListedStatus): pb.InstanceInfo {
  return { ...pb.InstanceInfo.fromPartial({ name: s.name, statusText: s.status, statusCode: s.statusCode }), status: STATUS_ENUM[s.status] };
}

function stateReply(s: RuntimeState): pb.InstanceStateReply {
  return {
    status: STATUS_ENUM[s.status],
    statusText: s.status,
    statusCode: { Running: 103, Stopped: 102, Frozen: 110, Error: 112 }[s.status],
    pid: s.pid,
    processes: s.processes,
    memoryUsage: s.memoryUsage,
    cpuUsageNs: s.cpuUsageNs,
    network: s.network,
  };
}

export function imageInfo(e: ImageEntry): pb.ImageInfo {
  return {
    fingerprint: e.fingerprint,
    filename: e.filename,
    size: e.size,
    architecture: e.architecture,
    createdAt: e.createdAt,
    properties: e.properties,
    type: e.type,
    compression: e.compression,
  };
}

function devicesIn(d: Record<string, pb.DeviceConfig>): Record<string, Record<string, string>> {
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, { ...v.entries }]));
}

/** Wraps an async handler for a unary or client-streaming call. */
function unary<Req, Res>(fn: (req: Req) => Promise<Res>): (call: { request: Req }, cb: grpc.sendUnaryData<Res>) => void {
  return (call, cb) => {
    fn(call.request).then(
      (res) => cb(null, res),
      (err: unknown) => cb(toStatus(err)),
    );
  };
}

/** Writes to a server stream, waiting for the transport when its buffer is full (not after the call was cancelled). */
async function write<T>(call: grpc.ServerWritableStream<unknown, T> | grpc.ServerDuplexStream<unknown, T>, msg: T): Promise<void> {
  if (call.write(msg) || call.cancelled) return;
  const ac = new AbortController();
  try {
    await Promise.race([once(call, "drain", { signal: ac.signal }), once(call, "cancelled", { signal: ac.signal })]);
  } finally {
    ac.abort();
  }
}

type HeaderOrData<H> = { chunk?: { $case: "header"; value: H } | { $case: "data"; value: Uint8Array } };

/** A client stream whose first message is `header` and the rest `data`: the header, then the data as it comes. */
async function headerThenData<H>(call: AsyncIterable<HeaderOrData<H>>, rpc: string): Promise<{ header: H; data: AsyncGenerator<Uint8Array> }> {
  const it = call[Symbol.asyncIterator]();
  const first = await it.next();
  const head = first.done ? undefined : first.value.chunk;
  if (head?.$case !== "header") throw invalidArgument(`The first ${rpc} message must be the header`);
  async function* data(): AsyncGenerator<Uint8Array> {
    for (let n = await it.next(); !n.done; n = await it.next()) {
      const c = n.value.chunk;
      if (c?.$case !== "data") throw invalidArgument(`${rpc} expects data after its header`);
      yield c.value;
    }
  }
  return { header: head.value, data: data() };
}

export function fileInfo(e: FileEntry): pb.FileInfo {
  return { ...e, entries: [...e.entries] };
}

export interface ServiceOptions {
  /** Used by PullImage to dial a peer agent. */
  tls?: TlsConfig;
}

export class MemberAgentService {
  constructor(
    private readonly member: Member,
    private readonly opts: ServiceOptions = {},
  ) {}

  private info(v: InstanceView): pb.InstanceInfo {
    return instanceInfo(v, this.member.name, this.member.driver.name);
  }

  handlers(): pb.MemberAgentServer {
    const m = this.member;
    return {
      createInstance: unary(async (req: pb.CreateInstanceRequest) =>
        this.info(
          await m.create({
            name: req.name,
            imageFingerprint: req.imageFingerprint,
            config: req.config,
            devices: devicesIn(req.devices),
            pool: req.pool,
            createdAt: req.createdAt || undefined,
          }),
        ),
      ),
      updateInstance: unary(async (req: pb.UpdateInstanceRequest) => this.info(await m.update(req.name, req.config, devicesIn(req.devices)))),
      startInstance: unary(async (req: pb.InstanceRef) => this.info(await m.start(req.name))),
      stopInstance: unary(async (req: pb.StopInstanceRequest) => {
        const r = await m.stop(req.name, req.timeoutMs, req.force);
        return { instance: this.info(r.view), clean: r.clean, elapsedMs: r.elapsedMs };
      }),
      restartInstance: unary(async (req: pb.StopInstanceRequest) => {
        const r = await m.restart(req.name, req.timeoutMs, req.force);
        return { instance: this.info(r.view), clean: r.clean, elapsedMs: r.elapsedMs };
      }),
      deleteInstance: unary(async (req: pb.DeleteInstanceRequest) => {
        await m.delete(req.name, req.force);
        return {};
      }),
      instanceState: unary(async (req: pb.InstanceRef) => stateReply(await m.state(req.name))),
      listInstances: unary(async (req: pb.ListInstancesRequest) => {
        if (req.brief && !req.withState) return { instances: (await m.statuses()).map(briefInfo) };
        const views = await m.list({ withState: req.withState });
        return { instances: views.map((v) => ({ ...this.info(v), state: v.state && stateReply(v.state) })) };
      }),
      exec: (call) => void this.exec(call),
      sendInstance: (call) => void this.sendInstance(call),
      receiveInstance: (call, cb) => void this.receiveInstance(call).then((r) => cb(null, r), (e: unknown) => cb(toStatus(e))),
      adoptInstance: unary(async (req: pb.AdoptInstanceRequest) => this.info(await m.adopt(req.name, req.pool))),
      ensurePool: unary(async (req: pb.PoolSpec) => {
        const p = await m.ensurePool({ name: req.name, driver: req.driver as PoolDriver, source: req.source });
        return { name: p.name, driver: p.driver, source: p.source };
      }),
      hasImage: unary(async (req: pb.ImageRef) => {
        const e = await m.images.get(req.fingerprint);
        return { present: e !== undefined, image: e ? imageInfo(e) : undefined };
      }),
      listImages: unary(async () => ({ images: (await m.images.list()).map(imageInfo) })),
      importImage: (call, cb) => void this.importImage(call).then((r) => cb(null, r), (e: unknown) => cb(toStatus(e))),
      sendImage: (call) => void this.sendImage(call),
      pullImage: unary(async (req: pb.PullImageRequest) => imageInfo(await this.pullImage(req))),
      readFile: (call) => void this.readFile(call),
      writeFile: (call, cb) => void this.writeFile(call).then((r) => cb(null, r), (e: unknown) => cb(toStatus(e))),
      deleteFile: unary(async (req: pb.FileRequest) => {
        await (await m.files(req.name)).delete(req.path);
        return {};
      }),
      deleteImage: unary(async (req: pb.ImageRef) => {
        await m.images.delete(req.fingerprint);
        return {};
      }),
      resources: unary(async () => {
        const hb = await m.heartbeat();
        const r = hb.resources;
        return {
          cpuCount: r.cpuCount,
          cpuModel: r.cpuModel,
          memoryTotal: r.memoryTotal,
          memoryUsed: r.memoryUsed,
          load1: r.load[0],
          load5: r.load[1],
          load15: r.load[2],
          architecture: r.architecture,
          kernelVersion: r.kernelVersion,
          pools: (await m.poolUsage()).map(({ pool, usage }) => ({
            name: pool.name,
            driver: pool.driver,
            remote: pool.remote,
            source: pool.source,
            total: usage.total,
            used: usage.used,
          })),
        };
      }),
      heartbeat: unary(async () => {
        const hb = await m.heartbeat();
        return {
          member: hb.member,
          driver: hb.driver,
          driverVersion: hb.driverVersion,
          instanceCount: hb.instanceCount,
          runningCount: hb.runningCount,
          imageCount: hb.imageCount,
          cpuCount: hb.resources.cpuCount,
          memoryTotal: hb.resources.memoryTotal,
          memoryUsed: hb.resources.memoryUsed,
          load1: hb.resources.load[0],
          architecture: hb.resources.architecture,
          startedAt: hb.startedAt,
          fingerprints: hb.fingerprints,
        };
      }),
    };
  }

  private async exec(call: grpc.ServerDuplexStream<pb.ExecInput, pb.ExecOutput>): Promise<void> {
    const inputs = (call as AsyncIterable<pb.ExecInput>)[Symbol.asyncIterator]();
    let proc: Awaited<ReturnType<Member["exec"]>> | undefined;
    let finished = false;
    call.on("cancelled", () => {
      if (!finished) proc?.signal(9);
    });
    try {
      const first = await inputs.next();
      const start = first.done ? undefined : first.value.input;
      if (start?.$case !== "start") throw invalidArgument("The first Exec message must be `start`");
      const s = start.value;
      proc = await this.member.exec(s.name, {
        command: s.command,
        env: s.environment,
        cwd: s.cwd,
        interactive: s.interactive,
        window: s.window,
        uid: s.uid,
        gid: s.gid,
      });
      const p = proc;
      // Client messages after `start`, until the client half-closes or the call ends.
      void (async () => {
        try {
          for (let n = await inputs.next(); !n.done; n = await inputs.next()) {
            const i = n.value.input;
            if (!i) continue;
            if (i.$case === "stdin") p.writeStdin(i.value);
            else if (i.$case === "stdinClose") p.closeStdin();
            else if (i.$case === "signal") p.signal(i.value);
            else if (i.$case === "resize") p.resize(i.value.width, i.value.height);
          }
        } catch {
          /* the call ended */
        }
      })();
      const pump = async (stream: Readable, kind: "stdout" | "stderr") => {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          for (let off = 0; off < chunk.length; off += CHUNK_SIZE) {
            const value = chunk.subarray(off, off + CHUNK_SIZE);
            await write(call, { output: kind === "stdout" ? { $case: "stdout", value } : { $case: "stderr", value } });
          }
        }
      };
      const [code] = await Promise.all([p.exited, pump(p.stdout, "stdout"), pump(p.stderr, "stderr")]);
      finished = true;
      await write(call, { output: { $case: "exitCode", value: code } });
      call.end();
    } catch (err) {
      finished = true;
      call.emit("error", toStatus(err));
    }
  }

  private async sendInstance(call: grpc.ServerWritableStream<pb.SendInstanceRequest, pb.InstanceChunk>): Promise<void> {
    let cancelled = false;
    call.on("cancelled", () => (cancelled = true));
    try {
      const { name, precopyId, sincePrecopyId } = call.request;
      const items = this.member.send(name, { precopyId: precopyId || undefined, sincePrecopyId: sincePrecopyId || undefined });
      let headerSent = false;
      for await (const item of items) {
        if (cancelled) break;
        if (!headerSent) {
          await write(call, { chunk: { $case: "header", value: { name, sourceMember: this.member.name, pool: "", precopyId: precopyId || sincePrecopyId, delta: !!sincePrecopyId } } });
          headerSent = true;
        }
        if (item.kind === "data") {
          for (let off = 0; off < item.data.length; off += CHUNK_SIZE) {
            await write(call, { chunk: { $case: "data", value: Buffer.from(item.data.subarray(off, off + CHUNK_SIZE)) } });
          }
        } else if (item.kind === "paths") {
          await write(call, { chunk: { $case: "paths", value: { entries: item.entries } } });
        } else {
          await write(call, { chunk: { $case: "trailer", value: { sha256: item.sha256, size: item.size } } });
        }
      }
      call.end();
    } catch (err) {
      call.emit("error", toStatus(err));
    }
  }

  private async receiveInstance(call: grpc.ServerReadableStream<pb.InstanceChunk, pb.InstanceInfo>): Promise<pb.InstanceInfo> {
    const it = (call as AsyncIterable<pb.InstanceChunk>)[Symbol.asyncIterator]();
    const first = await it.next();
    const head = first.done ? undefined : first.value.chunk;
    if (head?.$case !== "header") throw invalidArgument("The first ReceiveInstance message must be the header");
    async function* items(): AsyncGenerator<InstanceStreamItem> {
      for (let n = await it.next(); !n.done; n = await it.next()) {
        const c = n.value.chunk;
        if (c?.$case === "data") yield { kind: "data", data: c.value };
        else if (c?.$case === "trailer") yield { kind: "trailer", sha256: c.value.sha256, size: c.value.size };
        else if (c?.$case === "paths") yield { kind: "paths", entries: c.value.entries };
        else throw invalidArgument("Unexpected message in an instance stream");
      }
    }
    const { name, pool, precopyId, delta } = head.value;
    if (precopyId && !delta) {
      // A pre-copy pass: staged, no instance yet (the reply carries only its name).
      await this.member.stagePrecopy(name, pool, precopyId, items());
      return pb.InstanceInfo.fromPartial({ name, location: this.member.name });
    }
    return this.info(await this.member.receive(name, pool, items(), { precopyId: precopyId || undefined }));
  }

  private async importImage(call: grpc.ServerReadableStream<pb.ImageChunk, pb.ImageInfo>): Promise<pb.ImageInfo> {
    const { header, data } = await headerThenData(call as AsyncIterable<pb.ImageChunk>, "ImportImage");
    const e = await this.member.images.import(data, {
      expectedFingerprint: header.fingerprint || undefined,
      filename: header.filename,
    });
    return imageInfo(e);
  }

  private async readFile(call: grpc.ServerWritableStream<pb.FileRequest, pb.FileChunk>): Promise<void> {
    let data: { destroy(): void } | undefined;
    call.on("cancelled", () => data?.destroy());
    try {
      const { name, path, statOnly } = call.request;
      const read = await (await this.member.files(name)).read(path, { statOnly });
      data = read.data;
      await write(call, { chunk: { $case: "header", value: fileInfo(read.entry) } });
      for await (const chunk of read.data ?? []) {
        if (call.cancelled) break;
        await write(call, { chunk: { $case: "data", value: chunk } });
      }
      call.end();
    } catch (err) {
      call.emit("error", toStatus(err));
    } finally {
      data?.destroy();
    }
  }

  private async writeFile(call: grpc.ServerReadableStream<pb.WriteFileChunk, pb.FileInfo>): Promise<pb.FileInfo> {
    const { header: h, data } = await headerThenData(call as AsyncIterable<pb.WriteFileChunk>, "WriteFile");
    const files = await this.member.files(h.name);
    return fileInfo(await files.write({ path: h.path, type: h.type, uid: h.uid, gid: h.gid, mode: h.mode, append: h.append }, data));
  }

  private async sendImage(call: grpc.ServerWritableStream<pb.ImageRef, pb.ImageChunk>): Promise<void> {
    let cancelled = false;
    call.on("cancelled", () => (cancelled = true));
    try {
      const { entry, stream } = await this.member.images.open(call.request.fingerprint);
      await write(call, { chunk: { $case: "header", value: { fingerprint: entry.fingerprint, filename: entry.filename, size: entry.size } } });
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (cancelled) break;
        await write(call, { chunk: { $case: "data", value: chunk } });
      }
      call.end();
    } catch (err) {
      call.emit("error", toStatus(err));
    }
  }

  private async pullImage(req: pb.PullImageRequest): Promise<ImageEntry> {
    const existing = await this.member.images.get(req.fingerprint);
    if (existing) return existing;
    if (!this.opts.tls) throw new AgentError("unavailable", "This agent has no TLS configuration to reach its peers");
    const peer = new MemberClient(req.peerAddress, this.opts.tls);
    try {
      const { filename, data } = await peer.sendImage(req.fingerprint);
      return await this.member.images.import(data, { expectedFingerprint: req.fingerprint, filename });
    } finally {
      peer.close();
    }
  }
}
