// npm run bench:scriptlet
// Placement decisions per second for a ~30-line scriptlet over 100 candidate
// members, and the compile (parse + resolve) time of a generated 500-line script.
import { performance } from "node:perf_hooks";
import { compile } from "../src/starlark/index.ts";
import {
  compileScriptlet, runPlacementScriptlet, type ClusterMemberCandidate, type PlacementHostFunctions, type PlacementRequest,
} from "../src/scriptlet/index.ts";

const SCRIPTLET = `
# Pin db-* to members labelled for databases, spread the rest by free memory,
# avoid busy members, and prefer the least used failure domain.
def score(m, need):
    state = get_cluster_member_state(m.server_name)
    free = state.sysinfo.free_ram
    if free < need:
        return -1
    busy = state.sysinfo.load_averages[0] / state.sysinfo.logical_cpus
    return free // (1024 * 1024) - int(busy * 1000)

def instance_placement(request, candidate_members):
    need = get_instance_resources().memory_size
    pool = []
    for m in candidate_members:
        if m.status != "Online" or m.architecture != "x86_64":
            continue
        if request.name.startswith("db-") and m.config.get("user.role") != "database":
            continue
        pool.append(m)
    if not pool:
        fail("no member can take %s" % request.name)
    domains = {}
    for m in pool:
        domains[m.failure_domain] = domains.get(m.failure_domain, 0) + 1
    best = None
    best_score = -1
    for m in pool:
        s = score(m, need) + domains[m.failure_domain]
        if s > best_score:
            best, best_score = m, s
    if best == None:
        fail("no member has %d bytes free" % need)
    log_info("placing ", request.name, " on ", best.server_name)
    set_target(best.server_name)
`;

const GiB = 1024 ** 3;
const members: ClusterMemberCandidate[] = Array.from({ length: 100 }, (_, i) => ({
  server_name: `n${i}`,
  url: `https://10.0.${i >> 8}.${i & 255}:8443`,
  roles: i < 3 ? ["database"] : [],
  architecture: "x86_64",
  failure_domain: `rack-${i % 5}`,
  description: "",
  status: "Online",
  message: "Fully operational",
  config: (i % 10 === 0 ? { "user.role": "database" } : {}) as Record<string, string>,
  groups: ["default"],
  database: i < 3,
}));
const host: PlacementHostFunctions = {
  getClusterMemberState: (name) => {
    const i = Number(name.slice(1));
    return {
      sysinfo: {
        uptime: 1, load_averages: [(i % 7) / 2, 0, 0], processes: 100, total_ram: 64 * GiB, free_ram: ((i * 37) % 60) * GiB,
        shared_ram: 0, buffered_ram: 0, total_swap: 0, free_swap: 0, logical_cpus: 16,
      },
      storage_pools: {},
    };
  },
  getInstanceResources: () => ({ cpu_cores: 2, memory_size: 2 * GiB, root_disk_size: 10 * GiB }),
};
const request = (i: number): PlacementRequest => ({
  instance: { name: i % 4 === 0 ? `db-${i}` : `web-${i}`, project: "default", type: "container", config: {}, devices: {} },
  reason: "new",
  project: "default",
});

const compiled = compileScriptlet(SCRIPTLET);
const check = runPlacementScriptlet(compiled, request(1), members, host);
if (check.error || !check.target) throw new Error(`benchmark scriptlet failed: ${check.error}`);

function measure(run: (i: number) => void, minMillis: number): { perSecond: number; meanMicros: number; runs: number } {
  for (let i = 0; i < 200; i++) run(i); // warm up the JIT
  let runs = 0;
  const start = performance.now();
  let now = start;
  while (now - start < minMillis) {
    for (let k = 0; k < 50; k++) run(runs++);
    now = performance.now();
  }
  const elapsed = now - start;
  return { perSecond: (runs / elapsed) * 1000, meanMicros: (elapsed / runs) * 1000, runs };
}

const decisions = measure((i) => {
  const r = runPlacementScriptlet(compiled, request(i), members, host);
  if (!r.target) throw new Error(r.error);
}, 2000);

const lines: string[] = ["# generated benchmark script"];
for (let f = 0; lines.length + 11 <= 500; f++) {
  lines.push(
    `def f${f}(members, request, limit=${f}):`,
    `    picked = []`,
    `    for m in members:`,
    `        if m.status == "Online" and m.config.get("user.tier", "") in ("a", "b"):`,
    `            picked.append({"name": m.server_name, "score": len(m.groups) * ${f} % 7})`,
    `        elif limit > 3:`,
    `            continue`,
    `    ranked = sorted(picked, key=lambda p: (p["score"], p["name"]), reverse=True)`,
    `    names = [p["name"] for p in ranked if p["score"] >= 0]`,
    `    return "%s:%d" % (request.name, len(names)) if names else None`,
    ``,
  );
}
for (let c = 0; lines.length < 500; c++) lines.push(`LIMIT_${c} = ${c} * 1024`);
const source = lines.join("\n") + "\n";
const parse = measure(() => compile(source), 1000);

console.log(`scriptlet: ${SCRIPTLET.trim().split("\n").length}-line scriptlet over ${members.length} candidate members`);
console.log(`  ${decisions.perSecond.toFixed(0)} placement decisions/s (${decisions.meanMicros.toFixed(1)} µs per decision, ${decisions.runs} runs)`);
console.log(`compile: generated ${source.split("\n").length - 1}-line script`);
console.log(`  ${(parse.meanMicros / 1000).toFixed(3)} ms per parse + resolve (${parse.runs} runs)`);
