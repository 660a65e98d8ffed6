// Preloaded into the bench's node processes (node --import). On SIGUSR2 a node
// prints one line, "shoal-mem {json}", to stderr: process.memoryUsage() and the
// V8 heap spaces, then the same after a full GC when --expose-gc is on. It changes
// nothing else; the bench uses it to tell V8 heap from Buffers from native memory.
import v8 from "node:v8";

function sample() {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
  return { ...m, spaces };
}

process.on("SIGUSR2", () => {
  const before = sample();
  let afterGc;
  if (typeof globalThis.gc === "function") {
    globalThis.gc();
    afterGc = sample();
  }
  process.stderr.write(`shoal-mem ${JSON.stringify({ before, afterGc })}\n`);
});
