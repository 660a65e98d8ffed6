// Summarises V8 .cpuprofile files (node --cpu-prof), e.g. the nodes' profiles from
//   RAFT_BENCH_PHASES=throughput RAFT_BENCH_CPU_PROF=/tmp/prof npm run bench:raft
//   node --import tsx services/raft/bench/profile-summary.ts /tmp/prof [top]
// For each profile: time per area (project directory, package, node internals,
// GC, idle), the top functions by self time and project functions by inclusive time.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function area(f: CallFrame): string {
  const name = f.functionName;
  if (!f.url) {
    if (name === "(garbage collector)" || name === "(idle)" || name === "(program)") return name;
    return "native";
  }
  if (f.url.startsWith("node:")) return "node internals";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url);
  if (pkg) return pkg[1];
  const proj = /services\/raft\/src\/([^/]+)\//.exec(f.url);
  if (proj) return `raft/src/${proj[1]}`;
  if (f.url.includes("proto/gen/")) return "proto/gen (codecs)";
  return "other";
}

function label(f: CallFrame): string {
  const file = f.url ? basename(f.url.replace(/\?.*$/, "")) : "";
  return `${f.functionName || "(anonymous)"}${file ? ` ${file}:${f.lineNumber + 1}` : ""}`;
}

function pct(x: number, total: number): string {
  return `${((100 * x) / total).toFixed(1).padStart(5)}%`;
}

function summarise(path: string, top: number): void {
  const p = JSON.parse(readFileSync(path, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === "(idle)").reduce((a, [, t]) => a + t, 0);

  const areas = new Map<string, number>();
  const fnSelf = new Map<string, number>();
  const fnIncl = new Map<string, number>();
  for (const [id, t] of self) {
    const f = byId.get(id)!.callFrame;
    areas.set(area(f), (areas.get(area(f)) ?? 0) + t);
    fnSelf.set(label(f), (fnSelf.get(label(f)) ?? 0) + t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      if (!/services\/raft\/src\//.test(cf.url)) continue;
      const l = label(cf);
      if (seen.has(l)) continue;
      seen.add(l);
      fnIncl.set(l, (fnIncl.get(l) ?? 0) + t);
    }
  }
  const busy = total - idle;
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  console.log(`\n=== ${basename(path)}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${pct(busy, total).trim()})`);
  console.log("  by area (share of busy time):");
  for (const [a, t] of sorted(areas)) if (a !== "(idle)") console.log(`    ${pct(t, busy)}  ${a}`);
  console.log(`  top ${top} functions by self time (share of busy time):`);
  for (const [l, t] of sorted(fnSelf).filter(([l]) => !l.startsWith("(idle)")).slice(0, top)) console.log(`    ${pct(t, busy)}  ${l}`);
  console.log(`  top ${top} project functions by inclusive time (share of busy time):`);
  for (const [l, t] of sorted(fnIncl).slice(0, top)) console.log(`    ${pct(t, busy)}  ${l}`);
}

const [target, topArg] = process.argv.slice(2);
if (!target) {
  console.error("usage: profile-summary.ts <file.cpuprofile | dir> [top]");
  process.exit(2);
}
const files = statSync(target).isDirectory()
  ? readdirSync(target)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => join(target, f))
  : [target];
for (const f of files) summarise(f, Number(topArg ?? 20));
