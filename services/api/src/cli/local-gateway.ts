// Requests to the local gateway over its unix socket (DIR/unix.socket, full trust),
// for the `shoal` sub-commands that act on a running cluster.
import { request } from "node:http";

export interface LocalReply {
  status: number;
  /** The LXD envelope: {type, error, metadata, ...}. */
  json: { type?: string; error?: string; metadata?: unknown } | undefined;
}

export function postLocal(socketPath: string, path: string, body: unknown, timeoutMs = 30_000): Promise<LocalReply> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method: "POST", path, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString("utf8")) as LocalReply["json"] });
          } catch (e) {
            reject(e as Error);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("the gateway did not answer in time")));
    req.on("error", (e: NodeJS.ErrnoException) =>
      reject(e.code === "ENOENT" || e.code === "ECONNREFUSED" ? new Error(`no gateway at ${socketPath} (is \`shoal up\` running?)`) : e),
    );
    req.end(payload);
  });
}
