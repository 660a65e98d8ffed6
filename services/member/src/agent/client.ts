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

  /** brief: name and status only; withState: each with its runtime state (see ListInstancesRequest). */
  listInstances(opts: { brief?: boolean; withState?: boolean } = {}): Promise<pb.InstanceInfo[]> {
    return this.unary(this.raw.listInstances, { brief: opts.brief ?? false, withState: opts.withState ?? false }).then((r) => r.instances);
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
  /** `precopyId`: a pre-copy pass (the instance may run); `sincePrecopyId`: the delta pass after it (see proto/member.proto). */
  sendInstance(name: string, opts: { precopyId?: string; sincePrecopyId?: string } = {}): AsyncIterable<pb.InstanceChunk> & { cancel(): void } {
    return this.raw.sendInstance({ name, precopyId: opts.precopyId ?? "", sincePrecopyId: opts.sincePrecopyId ?? "" });
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

  /**
   * Copies a stopped instance from this agent to `target` (the caller then deletes it
   * here). With `precopyId` only stages a pre-copy there (the instance may run); with
   * `sincePrecopyId` completes that pre-copy by the delta (FAILED_PRECONDITION when
   * either side lost it: copy in full then).
   */
  async copyInstanceTo(target: MemberClient, name: string, pool?: string, opts: { precopyId?: string; sincePrecopyId?: string } = {}): Promise<pb.InstanceInfo> {
    const source = this.sendInstance(name, opts);
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
    const { header, data } = await headerThenData<pb.ImageHeader>(this.raw.sendImage({ fingerprint }), "SendImage");
    return { ...header, data };
  }

  // ---- files ----

  /**
   * ReadFile: resolves once the header arrived (a directory's entries, a symlink's
   * target, ...); a regular file's bytes follow in `data` (leaving the loop early ends
   * the call). Rejects with the agent's error (NOT_FOUND, ...) before any header.
   */
  readFile(name: string, path: string, opts: { statOnly?: boolean } = {}): Promise<{ info: pb.FileInfo; data: AsyncIterable<Uint8Array> }> {
    return headerThenData<pb.FileInfo>(this.raw.readFile({ name, path, statOnly: opts.statOnly ?? false }), "ReadFile").then(({ header, data }) => ({ info: header, data }));
  }

  /** WriteFile: the header, then `data` (a file's bytes, a symlink's target); resolves with what is there afterwards. */
  writeFile(header: Partial<pb.WriteFileHeader> & { name: string; path: string }, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<pb.FileInfo> {
    return clientStream<pb.WriteFileChunk, pb.FileInfo>(
      (cb) => this.raw.writeFile(cb),
      (async function* () {
        yield { chunk: { $case: "header" as const, value: pb.WriteFileHeader.fromPartial(header) } };
        for await (const chunk of data) {
          for (let off = 0; off < chunk.length; off += 1 << 20) yield { chunk: { $case: "data" as const, value: Buffer.from(chunk.subarray(off, off + (1 << 20))) } };
        }
      })(),
    );
  }

  deleteFile(name: string, path: string): Promise<pb.DeleteFileReply> {
    return this.unary(this.raw.deleteFile, { name, path, statOnly: false });
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
 * cancelled and the failure thrown. When the agent answers first (it refused the
 * stream midway), that answer is thrown at once, without waiting for the next message
 * (an upload still arriving), and is never left unhandled.
 */
async function clientStream<Req, Res>(
  open: (cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientWritableStream<Req>,
  messages: AsyncIterable<Req>,
): Promise<Res> {
  let res!: (v: Res) => void;
  let rej!: (e: Error) => void;
  const done = new Promise<Res>((a, b) => ((res = a), (rej = b)));
  // Rejects when the call fails; never settles otherwise (a reply comes after the end).
  const failed = done.then(() => new Promise<never>(() => undefined));
  failed.catch(() => undefined);
  const call = open((err, reply) => (err ? rej(err) : res(reply!)));
  const it = messages[Symbol.asyncIterator]();
  try {
    for (let n = await Promise.race([it.next(), failed]); !n.done; n = await Promise.race([it.next(), failed])) {
      if (!call.write(n.value)) await Promise.race([once(call, "drain"), failed]);
    }
    call.end();
  } catch (err) {
    call.cancel();
    it.return?.().catch(() => undefined);
    await done.catch(() => {});
    throw err;
  }
  return done;
}

type HeaderOrData<H> = { chunk?: { $case: "header"; value: H } | { $case: "data"; value: Uint8Array } };

/**
 * A server stream whose first message is `header` and the rest `data`: resolves with
 * the header once it arrived and the data as an async iterable; the call is cancelled
 * when the data is left early or was never wanted (a malformed stream).
 */
async function headerThenData<H>(call: grpc.ClientReadableStream<HeaderOrData<H>>, rpc: string): Promise<{ header: H; data: AsyncGenerator<Uint8Array> }> {
  const it = (call as AsyncIterable<HeaderOrData<H>>)[Symbol.asyncIterator]();
  const first = await it.next().catch((err: unknown) => {
    call.cancel();
    throw err;
  });
  const head = first.done ? undefined : first.value.chunk;
  if (head?.$case !== "header") {
    call.cancel();
    throw new Error(`${rpc} did not start with a header`);
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
  return { header: head.value, data: data() };
}
