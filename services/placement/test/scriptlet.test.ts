// LXD's placement scriptlet API: validation when the key is set, and decisions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compileScriptlet, runPlacementScriptlet, validateScriptlet } from "../src/scriptlet/index.ts";
import { hostWithFreeMemory, member, request } from "./support/cluster.ts";

// The scenario: pin db-* to one member, spread the rest by free memory.
const PIN_AND_SPREAD = `
def instance_placement(request, candidate_members):
    names = [m.server_name for m in candidate_members]
    if request.name.startswith("db-"):
        if "n2" in names:
            log_info("pinning ", request.name, " to n2")
            set_target("n2")
            return
        fail("n2 is not a candidate for database instances")
    best = None
    best_free = -1
    for m in candidate_members:
        free = get_cluster_member_state(m.server_name).sysinfo.free_ram
        if free > best_free:
            best, best_free = m.server_name, free
    log_info("spreading ", request.name, " to ", best, " (", best_free // (1024 * 1024 * 1024), " GiB free)")
    set_target(best)
`;

const members = [member("n1"), member("n2"), member("n3")];

test("validate: a good scriptlet is accepted", () => {
  assert.deepEqual(validateScriptlet(PIN_AND_SPREAD), { ok: true });
  assert.deepEqual(validateScriptlet("def instance_placement(request, candidate_members): return"), { ok: true });
  // Logging at top level is allowed; it goes nowhere during validation.
  assert.deepEqual(validateScriptlet(`log_info("loading")\ndef instance_placement(*args):\n    pass\n`), { ok: true });
});

test("validate: syntax errors are refused with their line", () => {
  const r = validateScriptlet("def instance_placement(request, candidate_members):\n    if True\n        pass\n");
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.line === 2);
  assert.ok(!r.ok && /^scriptlet:2:12: got newline, expected ':'$/.test(r.error), !r.ok ? r.error : "");
});

test("validate: a missing or misshapen instance_placement is refused", () => {
  const none = validateScriptlet("def place(request, candidates):\n    pass\n");
  assert.deepEqual(none, { ok: false, error: "scriptlet: no function instance_placement(request, candidate_members) is defined", line: undefined, column: undefined });
  const arity = validateScriptlet("x = 1\n\ndef instance_placement(request):\n    pass\n");
  assert.equal(arity.ok, false);
  assert.ok(!arity.ok && arity.line === 3);
  assert.ok(!arity.ok && arity.error === "scriptlet:3:1: instance_placement must take 2 arguments (request, candidate_members), not 1");
  const three = validateScriptlet("def instance_placement(a, b, c):\n    pass\n");
  assert.ok(!three.ok && /must take 2 arguments/.test(three.error));
  assert.deepEqual(validateScriptlet("def instance_placement(a, b, c=None):\n    pass\n"), { ok: true });
  const notFn = validateScriptlet("instance_placement = 5\n");
  assert.ok(!notFn.ok && notFn.error === "scriptlet: instance_placement must be a function, not int");
});

test("validate: undefined names and top-level errors are refused; placement functions are not callable at top level", () => {
  const typo = validateScriptlet("def instance_placement(request, candidate_members):\n    set_targt('n1')\n");
  assert.ok(!typo.ok && typo.error === "scriptlet:2:5: undefined: set_targt");
  const top = validateScriptlet("set_target('n1')\ndef instance_placement(r, c):\n    pass\n");
  assert.ok(!top.ok && /^scriptlet:1:11: set_target: only available while instance_placement runs$/.test(top.error));
  const loop = validateScriptlet("def f():\n    for i in range(100000000):\n        pass\nf()\n");
  assert.ok(!loop.ok && /step budget exhausted/.test(loop.error));
});

test("run: db-* instances are pinned, others go to the member with the most free memory", () => {
  const host = hostWithFreeMemory({ n1: 10, n2: 40, n3: 25 });
  const db = runPlacementScriptlet(PIN_AND_SPREAD, request("db-main"), members, host);
  assert.deepEqual(db, { target: "n2", logs: [{ level: "info", message: "pinning db-main to n2" }] });
  const web = runPlacementScriptlet(PIN_AND_SPREAD, request("web-1"), members, host);
  assert.deepEqual(web, { target: "n2", logs: [{ level: "info", message: "spreading web-1 to n2 (40 GiB free)" }] });
  const without = runPlacementScriptlet(PIN_AND_SPREAD, request("web-2"), [member("n1"), member("n3")], host);
  assert.equal(without.target, "n3");
  const dbWithout = runPlacementScriptlet(PIN_AND_SPREAD, request("db-2"), [member("n1"), member("n3")], host);
  assert.equal(dbWithout.target, undefined);
  assert.equal(dbWithout.error, "scriptlet:9:13: fail: n2 is not a candidate for database instances");
});

test("run: the request and candidates carry LXD's field names", () => {
  const src = `
def instance_placement(request, candidate_members):
    m = candidate_members[0]
    log_info(request.name, "|", request.project, "|", request.reason, "|", request.type, "|", request.target)
    log_info(request.config["limits.memory"], "|", request.devices["root"]["pool"], "|", request.profiles)
    log_info(m.server_name, "|", m.url, "|", m.roles, "|", m.architecture, "|", m.failure_domain, "|", m.status)
    log_info(m.message, "|", m.config, "|", m.groups, "|", m.database, "|", repr(m.description))
    res = get_cluster_member_resources(m.server_name)
    state = get_cluster_member_state(m.server_name)
    want = get_instance_resources()
    log_warn(res.cpu.total, "|", res.memory.total - res.memory.used, "|", state.storage_pools["default"].space.total)
    log_error(want.cpu_cores, "|", want.memory_size, "|", want.root_disk_size, "|", state.sysinfo.load_averages)
    set_target(m.server_name)
`;
  const host = hostWithFreeMemory({ n1: 16 });
  const r = runPlacementScriptlet(src, request("c1", { reason: "evacuation", target: "@g1" }),
    [member("n1", { failure_domain: "rack1", config: { "scheduler.instance": "all" }, groups: ["default", "g1"] })], host);
  assert.equal(r.error, undefined);
  assert.deepEqual(r.logs, [
    { level: "info", message: "c1|default|evacuation|container|@g1" },
    { level: "info", message: '1GiB|default|["default"]' },
    { level: "info", message: 'n1|https://10.0.0.1:8443|["database"]|x86_64|rack1|Online' },
    { level: "info", message: 'Fully operational|{"scheduler.instance": "all"}|["default", "g1"]|True|""' },
    { level: "warn", message: "8|17179869184|107374182400" },
    { level: "error", message: "2|1073741824|10737418240|[0.5, 0.25, 0.125]" },
  ]);
  assert.equal(r.target, "n1");
  assert.deepEqual(host.calls, ["resources n1", "state n1", "instance"]);
});

test("run: set_target refuses a member that is not a candidate, naming the line", () => {
  const src = "def instance_placement(request, candidate_members):\n    log_info('trying n9')\n    set_target('n9')\n";
  const r = runPlacementScriptlet(src, request("c1"), members);
  assert.deepEqual(r, {
    logs: [{ level: "info", message: "trying n9" }],
    error: 'scriptlet:3:15: set_target: invalid member name "n9": not one of the candidate members',
  });
});

test("run: a silent scriptlet, a non-None return and a bad script all fail clearly", () => {
  const silent = runPlacementScriptlet("def instance_placement(request, candidate_members):\n    pass\n", request("c1"), members);
  assert.match(silent.error!, /did not choose a member/);
  assert.equal(silent.target, undefined);
  const returns = runPlacementScriptlet("def instance_placement(r, c):\n    set_target('n1')\n    return 'n1'\n", request("c1"), members);
  assert.equal(returns.error, "scriptlet: instance_placement must return None, not string");
  assert.equal(returns.target, undefined);
  const broken = runPlacementScriptlet("def instance_placement(r, c)\n", request("c1"), members);
  assert.match(broken.error!, /^scriptlet:1:29: /);
  const missing = runPlacementScriptlet("x = 1\n", request("c1"), members);
  assert.match(missing.error!, /no function instance_placement/);
});

test("run: host data is frozen", () => {
  const cases = [
    "request.config['limits.memory'] = '2GiB'",
    "candidate_members.append(candidate_members[0])",
    "candidate_members[0].groups.append('x')",
    "request.devices['root']['pool'] = 'other'",
  ];
  for (const stmt of cases) {
    const r = runPlacementScriptlet(`def instance_placement(request, candidate_members):\n    ${stmt}\n`, request("c1"), members);
    assert.match(r.error!, /^scriptlet:2:\d+: cannot .* frozen (list|dict)$/, stmt);
  }
  const field = runPlacementScriptlet("def instance_placement(request, candidate_members):\n    request.name = 'x'\n", request("c1"), members);
  assert.match(field.error!, /cannot assign to field \.name: struct is immutable/);
});

test("run: missing or failing host functions give the scriptlet a clear error", () => {
  const src = "def instance_placement(r, c):\n    get_cluster_member_state('n7')\n";
  assert.equal(runPlacementScriptlet(src, request("c1"), members).error,
    "scriptlet:2:29: get_cluster_member_state: not available on this cluster");
  assert.equal(runPlacementScriptlet(src, request("c1"), members, hostWithFreeMemory({ n1: 1 })).error,
    'scriptlet:2:29: get_cluster_member_state: Cluster member "n7" not found');
});

test("run: log functions join their arguments without separators; print logs at info", () => {
  const src = `
def instance_placement(request, candidate_members):
    log_info("a", 1, "b", None, [1, "x"])
    print("printed", 2)
    set_target("n1")
`;
  assert.deepEqual(runPlacementScriptlet(src, request("c1"), members).logs, [
    { level: "info", message: 'a1bNone[1, "x"]' },
    { level: "info", message: "printed 2" },
  ]);
});

test("run: limits apply to the whole decision and a runaway scriptlet fails with its line", () => {
  const src = "def instance_placement(r, c):\n    for i in range(100000000):\n        pass\n";
  const r = runPlacementScriptlet(src, request("c1"), members, {}, { maxSteps: 10_000 });
  assert.match(r.error!, /^scriptlet:[23]:\d+: step budget exhausted \(more than 10000 steps\)$/);
});

test("run: a compiled scriptlet can be reused across decisions without leaking state", () => {
  const c = compileScriptlet(`
chosen = []
def instance_placement(request, candidate_members):
    picks = sorted(candidate_members, key=lambda m: m.server_name, reverse=True)
    set_target(picks[0].server_name)
`);
  assert.equal(runPlacementScriptlet(c, request("a"), members).target, "n3");
  assert.equal(runPlacementScriptlet(c, request("b"), [member("n1"), member("n2")]).target, "n2");
});

test("run: candidate structs print, compare and list their fields like any struct", () => {
  const src = `
def instance_placement(request, candidate_members):
    a, b = candidate_members[0], candidate_members[1]
    log_info(dir(a))
    log_info(hasattr(a, "server_name"), hasattr(a, "constructor"), getattr(a, "nope", "-"))
    log_info(a == b, a == candidate_members[0], repr(request.source))
    log_info(repr(a))
    set_target(b.server_name)
`;
  const r = runPlacementScriptlet(src, request("c1"), [member("n1"), member("n2")]);
  assert.equal(r.error, undefined);
  assert.deepEqual(r.logs.map((l) => l.message), [
    '["architecture", "config", "database", "description", "failure_domain", "groups", "message", "roles", "server_name", "status", "url"]',
    "TrueFalse-",
    "FalseTrue{}",
    'struct(server_name = "n1", url = "https://10.0.0.1:8443", roles = ["database"], architecture = "x86_64", failure_domain = "default", description = "", status = "Online", message = "Fully operational", config = {}, groups = ["default"], database = True)',
  ]);
});
