// A typed, promise-based client of one member agent, over mTLS with the cluster
// certificate. The gateway and the coordinator use it; so does PullImage between
// agents. Errors are grpc ServiceErrors (err.code is a grpc.status, err.details the
// agent's sentence).
import * as grpc from "@grpc/grpc-js";
import { createReadStream } from "node:fs";
import { once } from "node:events";
import * as pb from "../../../../proto/gen/member.ts";
import { CLIENT_CHANNEL_OPTIONS, clientCredentials, type TlsConfig } from "../../../raft/src/transport/credentials.ts";

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface ExecSession {
  write(data: string | Uint8Array): void;
  closeStdin(): void;
  signal(signal: number): void;
  resize(width: number, height: number): void;
  /** Resolves once the agent sent the exit code (with all output collected). */
  result: Promise<ExecResult>;
}

export interface ExecHandlers {
  onStdout?(chunk: Buffer): void;
  onStderr?(chunk: Buffer): void;
}

type Unary<Req, Res> = (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;

export class MemberClient {
  readonly raw: pb.MemberAgentClient;

  constructor(
    readonly address: string,
    tls: TlsConfig,
    /** Deadline of unary calls (ms). */
    private readonly timeoutMs = 120_000,
  ) {
    this.raw = new pb.MemberAgentClient(address, clientCredentials(tls), CLIENT_CHANNEL_OPTIONS);
  }

  close(): void {
    this.raw.close();
  }

  private unary<Req, Res>(method: Unary<Req, Res>, req: Req, timeoutMs = this.timeoutMs): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(this.raw, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  // ---- instances ----

  createInstance(req: Partial<pb.CreateInstanceRequest> & { name: string; imageFingerprint: string }): Promise<pb.InstanceInfo> {
    return this.unary(this.raw.createInstance, pb.CreateInstanceRequest.fromPartial(req));
  }

  updateInstance(req: Partial<pb.UpdateInstanceRequest> & { name: string }): Promise<pb.InstanceInfo> {
    return this.unary(this.raw.updateInstance, pb.UpdateInstanceRequest.fromPartial(req));
  }

  startInstance(name: string): Promise<pb.InstanceInfo> {
    return this.unary(this.raw.startInstance, { name });
  }

  stopInstance(name: string, opts: { timeoutMs?: number; force?: boolean } = {}): Promise<pb.StopInstanceReply> {
    const timeoutMs = opts.timeoutMs ?? 0;
    return this.unary(this.raw.stopInstance, { name, timeoutMs, force: opts.force ?? false }, (timeoutMs || 30_000) + this.timeoutMs);
  }

  restartInstance(name: string, opts: { timeoutMs?: number; force?: boolean } = {}): Promise<pb.StopInstanceReply> {
    const timeoutMs = opts.timeoutMs ?? 0;
    return this.unary(this.raw.restartInstance, { name, timeoutMs, force: opts.force ?? false }, (timeoutMs || 30_000) + this.timeoutMs);
  }

  deleteInstance(name: string, force = false): Promise<pb.DeleteInstanceReply> {
    return this.unary(this.raw.deleteInstance, { name, force });
  }

  instanceState(name: string): Promise<pb.InstanceStateReply> {
    return this.unary(this.raw.instanceState, { name });
  }

  listInstances(): Promise<pb.InstanceInfo[]> {
    return this.unary(this.raw.listInstances, {}).then((r) => r.instances);
  }

  adoptInstance(name: string, pool: string): Promise<pb.InstanceInfo> {
    return this.unary(this.raw.adoptInstance, { name, pool });
  }

  ensurePool(spec: pb.PoolSpec): Promise<pb.PoolSpec> {
    return this.unary(this.raw.ensurePool, spec);
  }

  /** Runs a command; stdin is written from `start` on, then closed with closeStdin(). */
  exec(start: Partial<pb.ExecStart> & { name: string; command: string[] }, handlers: ExecHandlers = {}): ExecSession {
    const call = this.raw.exec();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const result = new Promise<ExecResult>((resolve, reject) => {
      let exitCode: number | undefined;
      call.on("data", (msg: pb.ExecOutput) => {
        const o = msg.output;
        if (o?.$case === "stdout") {
          out.push(o.value);
          handlers.onStdout?.(o.value);
        } else if (o?.$case === "stderr") {
          err.push(o.value);
          handlers.onStderr?.(o.value);
        } else if (o?.$case === "exitCode") exitCode = o.value;
      });
      call.on("error", reject);
      call.on("end", () => {
        if (exitCode === undefined) reject(new Error("exec stream ended without an exit code"));
        else resolve({ exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
        call.end();
      });
    });
    result.catch(() => {});
    call.write({ input: { $case: "start", value: pb.ExecStart.fromPartial(start) } });
    return {
      write: (data) => void call.write({ input: { $case: "stdin", value: Buffer.from(data) } }),
      closeStdin: () => void call.write({ input: { $case: "stdinClose", value: true } }),
      signal: (signal) => void call.write({ input: { $case: "signal", value: signal } }),
      resize: (width, height) => void call.write({ input: { $case: "resize", value: { width, height } } }),
      result,
    };
  }

  /** exec() for the common case: optional stdin, then EOF, then the collected result. */
  run(name: string, command: string[], opts: { stdin?: string | Uint8Array; env?: Record<string, string>; cwd?: string } = {}): Promise<ExecResult> {
    const s = this.exec({ name, command, environment: opts.env ?? {}, cwd: opts.cwd ?? "" });
    if (opts.stdin !== undefined) s.write(opts.stdin);
    s.closeStdin();
    return s.result;
  }

  // ---- migration ----

  /** The raw SendInstance stream (header, data..., trailer). */
  sendInstance(name: string): AsyncIterable<pb.InstanceChunk> & { cancel(): void } {
    return this.raw.sendInstance({ name });
  }

  /** Feeds a SendInstance stream to this agent's ReceiveInstance. */
  async receiveInstance(chunks: AsyncIterable<pb.InstanceChunk> | Iterable<pb.InstanceChunk>, opts: { pool?: string } = {}): Promise<pb.InstanceInfo> {
    const pool = opts.pool;
    return clientStream<pb.InstanceChunk, pb.InstanceInfo>(
      (cb) => this.raw.receiveInstance(cb),
      (async function* () {
        for await (const c of chunks) {
          yield pool !== undefined && c.chunk?.$case === "header" ? { chunk: { $case: "header" as const, value: { ...c.chunk.value, pool } } } : c;
        }
      })(),
    );
  }

  /** Copies a stopped instance from this agent to `target` (the caller then deletes it here). */
  async copyInstanceTo(target: MemberClient, name: string, pool?: string): Promise<pb.InstanceInfo> {
    const source = this.sendInstance(name);
    try {
      return await target.receiveInstance(source, { pool });
    } finally {
      source.cancel();
    }
  }

  // ---- images ----

  hasImage(fingerprint: string): Promise<pb.HasImageReply> {
    return this.unary(this.raw.hasImage, { fingerprint });
  }

  listImages(): Promise<pb.ImageInfo[]> {
    return this.unary(this.raw.listImages, {}).then((r) => r.images);
  }

  deleteImage(fingerprint: string): Promise<pb.DeleteImageReply> {
    return this.unary(this.raw.deleteImage, { fingerprint });
  }

  pullImage(fingerprint: string, peerAddress: string): Promise<pb.ImageInfo> {
    return this.unary(this.raw.pullImage, { fingerprint, peerAddress });
  }

  /** Streams an image file to the agent; `fingerprint` (when given) must be the file's sha256. */
  async importImage(data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: { fingerprint?: string; filename?: string } = {}): Promise<pb.ImageInfo> {
    return clientStream<pb.ImageChunk, pb.ImageInfo>(
      (cb) => this.raw.importImage(cb),
      (async function* () {
        yield { chunk: { $case: "header" as const, value: { fingerprint: opts.fingerprint ?? "", filename: opts.filename ?? "", size: 0 } } };
        for await (const chunk of data) yield { chunk: { $case: "data" as const, value: Buffer.from(chunk) } };
      })(),
    );
  }

  importImageFile(path: string, opts: { fingerprint?: string; filename?: string } = {}): Promise<pb.ImageInfo> {
    return this.importImage(createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>, opts);
  }

  /** SendImage: resolves with the header once it arrived, and the file's bytes as a stream. */
  async sendImage(fingerprint: string): Promise<{ fingerprint: string; filename: string; size: number; data: AsyncIterable<Uint8Array> }> {
    const call = this.raw.sendImage({ fingerprint });
    const it = (call as AsyncIterable<pb.ImageChunk>)[Symbol.asyncIterator]();
    const first = await it.next();
    const head = first.done ? undefined : first.value.chunk;
    if (head?.$case !== "header") {
      call.cancel();
      throw new Error("SendImage did not start with a header");
    }
    async function* data(): AsyncGenerator<Uint8Array> {
      try {
        for (let n = await it.next(); !n.done; n = await it.next()) {
          if (n.value.chunk?.$case === "data") yield n.value.chunk.value;
        }
      } finally {
        call.cancel();
      }
    }
    return { ...head.value, data: data() };
  }

  // ---- resources ----

  resources(): Promise<pb.ResourcesReply> {
    return this.unary(this.raw.resources, {});
  }

  heartbeat(coordinator = "", term = 0): Promise<pb.HeartbeatReply> {
    return this.unary(this.raw.heartbeat, { coordinator, term }, 10_000);
  }
}

/**
 * A client-streaming call: writes every message (waiting for the stream to drain),
 * ends it and resolves with the reply; if producing the messages fails, the call is
 * cancelled and the failure thrown.
 */
async function clientStream<Req, Res>(
  open: (cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientWritableStream<Req>,
  messages: AsyncIterable<Req>,
): Promise<Res> {
  let res!: (v: Res) => void;
  let rej!: (e: Error) => void;
  const done = new Promise<Res>((a, b) => ((res = a), (rej = b)));
  const call = open((err, reply) => (err ? rej(err) : res(reply!)));
  try {
    for await (const m of messages) {
      if (!call.write(m)) await Promise.race([once(call, "drain"), done]);
    }
    call.end();
  } catch (err) {
    call.cancel();
    await done.catch(() => {});
    throw err;
  }
  return done;
}
