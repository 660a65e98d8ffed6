/**
 * Durable state that cannot be trusted and cannot be repaired automatically
 * (e.g. a bad record in a WAL segment that is not the last one). The node must
 * stop rather than run with a silently shortened log.
 */
export class StorageCorruptionError extends Error {
  constructor(
    /** The file at fault. */
    readonly file: string,
    /** Byte offset of the first bad byte, when known. */
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`storage corruption in ${file} at offset ${offset}: ${reason}`);
    this.name = "StorageCorruptionError";
  }
}
