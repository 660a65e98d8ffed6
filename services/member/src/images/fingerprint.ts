// An image's fingerprint: the lowercase hex sha256 of the image file, as LXD computes it.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

export async function fileFingerprint(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}
