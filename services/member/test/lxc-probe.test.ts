// Reading a container's state and addresses from /proc text (probe.ts, inspect.ts):
// the parsers on fixed text, and the probe on a fake /proc-less directory.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseNetFiles } from "../src/drivers/lxc/inspect.ts";
import { parseProcCgroup, payloadCgroup, probeContainer, STOPPED_PROBE } from "../src/drivers/lxc/probe.ts";
import { tempDir } from "./support/env.ts";

describe("lxc probe: cgroups", () => {
  it("parses /proc/<pid>/cgroup lines of v1 controllers and the unified hierarchy", () => {
    const lines = parseProcCgroup("9:name=systemd:/lxc.payload.c1\n4:memory:/lxc.payload.c1\n3:cpu,cpuacct:/lxc.payload.c1/init.scope\n0::/lxc.payload.c1\n");
    assert.deepEqual(lines.map((l) => l.controllers), ["name=systemd", "memory", "cpu,cpuacct", ""]);
    assert.equal(lines[2]!.path, "/lxc.payload.c1/init.scope");
  });

  it("finds the container-level cgroup, with LXC's -N suffix, and nothing for another container", () => {
    assert.equal(payloadCgroup("/lxc.payload.c1/init.scope", "c1"), "/lxc.payload.c1");
    assert.equal(payloadCgroup("/machine/lxc.payload.c1-2", "c1"), "/machine/lxc.payload.c1-2");
    assert.equal(payloadCgroup("/lxc.payload.c10", "c1"), undefined);
    assert.equal(payloadCgroup("/lxc.payload.c1-x", "c1"), undefined);
    assert.equal(payloadCgroup("/", "c1"), undefined);
  });

  it("reports stopped without a pid file, with garbage in it, or when its process is gone", async () => {
    const dir = tempDir("probe");
    try {
      assert.deepEqual(await probeContainer(dir.path, "c1"), STOPPED_PROBE);
      mkdirSync(join(dir.path, "c1"));
      writeFileSync(join(dir.path, "c1", "pid"), "not a pid\n");
      assert.deepEqual(await probeContainer(dir.path, "c1"), STOPPED_PROBE);
      writeFileSync(join(dir.path, "c1", "pid"), "2147483646\n");
      assert.deepEqual(await probeContainer(dir.path, "c1"), STOPPED_PROBE);
      // A live process that is not an LXC monitor of c1 (this test's own pid): its children are not c1's init.
      writeFileSync(join(dir.path, "c1", "pid"), `${process.pid}\n`);
      assert.deepEqual(await probeContainer(dir.path, "c1"), STOPPED_PROBE);
    } finally {
      dir.cleanup();
    }
  });
});

describe("lxc probe: network addresses from /proc/<pid>/net", () => {
  const dev = "Inter-|   Receive\n face |bytes    packets\n    lo:       0       0\n  eth0: 100 1\n";
  const route = [
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
  ].join("\n");
  const fibTrie = [
    "Main:",
    "  +-- 0.0.0.0/0 3 0 5",
    "     +-- 127.0.0.0/8 2 0 2",
    "           |-- 127.0.0.1",
    "              /32 host LOCAL",
    "     +-- 192.0.2.0/24 2 0 2",
    "           |-- 192.0.2.0",
    "              /24 link UNICAST",
    "           |-- 192.0.2.2",
    "              /32 host LOCAL",
    "        |-- 192.0.2.255",
    "           /32 link BROADCAST",
    "Local:",
    "           |-- 192.0.2.2",
    "              /32 host LOCAL",
  ].join("\n");
  const ifInet6 = ["fd000000000000000000000000000002 02 40 00 82     eth0", "00000000000000000000000000000001 01 80 10 80       lo", "fe8000000000000000fc00fffe000001 02 40 20 80     eth0"].join("\n");

  it("lists every interface with its IPv4 (by the route table) and IPv6 addresses, once each", () => {
    const net = parseNetFiles({ dev, ifInet6, fibTrie, route });
    assert.deepEqual(net, [
      {
        name: "lo",
        addresses: [
          { family: "inet", address: "127.0.0.1", netmask: "8", scope: "local" },
          { family: "inet6", address: "::1", netmask: "128", scope: "local" },
        ],
      },
      {
        name: "eth0",
        addresses: [
          { family: "inet", address: "192.0.2.2", netmask: "24", scope: "global" },
          { family: "inet6", address: "fd00::2", netmask: "64", scope: "global" },
          { family: "inet6", address: "fe80::fc:ff:fe00:1", netmask: "64", scope: "link" },
        ],
      },
    ]);
  });

  it("shows a down loopback without addresses (a container without network)", () => {
    assert.deepEqual(parseNetFiles({ dev: "h1\nh2\n    lo:       0       0\n", ifInet6: "", fibTrie: "", route: "Iface\n" }), [{ name: "lo", addresses: [] }]);
  });

  it("gives up (so the caller asks iproute2) when an IPv4 address matches no route", () => {
    assert.equal(parseNetFiles({ dev, ifInet6: "", fibTrie: "Main:\n |-- 10.1.2.3\n    /32 host LOCAL\n", route }), undefined);
  });
});
