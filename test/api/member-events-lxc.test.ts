// Acceptance: /1.0/events carries what happens on the members, with the real `lxc
// monitor` 5.0.2, on a cluster of real processes (`shoal member` ×2 with the simulated
// driver, two `shoal gateway`s on the same database). A listener that wants `logging`
// events makes its gateway stream every member's own logging events (location = the
// member) beside the gateway's own (location = the gateway); lifecycle events written
// through one gateway reach a monitor on the other; a gateway's own logging lines reach
// the other gateway's monitor too (relayed through a member).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort } from "../../services/raft/test/support/node-processes.ts";
import { TestCluster, waitUntil } from "../cluster/support.ts";
import { LXC, monitor } from "./support.ts";

interface MonitorEvent {
  type: string;
  location?: string;
  metadata: { message?: string; level?: string; action?: string; source?: string; context?: Record<string, unknown> };
}

/** `lxc monitor ARGS --format json`, its events parsed (one JSON object per line). */
function jsonMonitor(args: string[], env: Record<string, string>): { events: () => MonitorEvent[]; output: () => string; stop: () => void } {
  const m = monitor([...args, "--format", "json"], env, 60_000);
  return { ...m, events: () => m.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as MonitorEvent) };
}

const started = (evs: MonitorEvent[], location: string) =>
  evs.some((e) => e.type === "logging" && e.location === location && e.metadata.message === "Event listener server handler started");

describe("events from every member and gateway (real processes, real lxc monitor)", { skip: existsSync(LXC) ? false : `${LXC} missing (apt-get install lxd-client)` }, () => {
  const c = new TestCluster({ memberArgs: ["--driver", "simulated"] });
  const second = { LXD_DIR: join(c.dir, "gateway2"), LXD_CONF: join(c.dir, "lxc2") };
  const monitors: { stop: () => void }[] = [];

  before(async () => {
    await c.bootstrap("member1");
    await c.join("member2", await c.token("member2"));
    const member1 = c.memberDir("member1");
    await c.spawn(
      "gateway2",
      ["gateway", "--dir", second.LXD_DIR, "--listen", `127.0.0.1:${await freePort()}`, "--db", c.addresses.get("member1")!, "--cert", join(member1, "cluster.crt"), "--key", join(member1, "cluster.key"), "--name", "gateway2"],
      /^shoal gateway: https/m,
    );
  });
  after(async () => {
    for (const m of monitors) m.stop();
    await c.close();
  });

  test("lxc monitor --type=logging: every member's logging events (location = the member) and the gateway's own", async () => {
    const m = jsonMonitor(["--type=logging"], c.env);
    const m2 = jsonMonitor(["--type=logging"], second);
    monitors.push(m, m2);
    // Each gateway greets a new listener (LXD's line) once it is registered.
    await waitUntil("both monitors to connect", 30_000, () => started(m.events(), "gateway") && started(m2.events(), "gateway2")).catch((e: Error) => {
      throw new Error(`${e.message}; monitor 1 printed: ${m.output()}\nmonitor 2 printed: ${m2.output()}`);
    });

    // The coordinator (on member1, whose database node leads) carries out an
    // evacuation and logs it: a logging event located at member1, on both gateways.
    // The gateways open their member streams as the listeners arrive; should a stream
    // still be opening, the evacuation is done again (at most 3 times).
    const fromCoordinator = (evs: MonitorEvent[]) =>
      evs.find((e) => e.type === "logging" && e.location === "member1" && /^coordinator: evacuate plan \S+: executing/.test(e.metadata.message ?? ""));
    const seen = () => !!fromCoordinator(m.events()) && !!fromCoordinator(m2.events());
    for (let attempt = 1; attempt <= 3 && !seen(); attempt++) {
      const evacuate = await c.lxc("cluster", "evacuate", "member2", "--force");
      assert.equal(evacuate.code, 0, evacuate.stderr);
      await waitUntil("the coordinator's evacuation log line on both monitors", 10_000, seen).catch(() => undefined);
      const restore = await c.lxc("cluster", "restore", "member2", "--force");
      assert.equal(restore.code, 0, restore.stderr);
    }
    assert.ok(seen(), `no coordinator log line from member1 on both monitors; monitor 1 printed: ${m.output()}\nmonitor 2 printed: ${m2.output()}`);
    assert.equal(fromCoordinator(m.events())!.metadata.level, "info");
    // Greeted by each member when this gateway opened its stream.
    assert.ok(started(m2.events(), "member1") || started(m.events(), "member1"));

    // The gateway's own request log (LXD's "Handling API request"), located at it.
    const handled = (evs: MonitorEvent[], location: string) =>
      evs.find((e) => e.location === location && e.metadata.message === "Handling API request" && e.metadata.context?.url === "/1.0/cluster/members/member2/state");
    assert.equal(handled(m.events(), "gateway")?.metadata.context?.protocol, "unix");
    assert.equal(handled(m.events(), "gateway")?.metadata.context?.method, "POST");
    assert.equal(handled(m.events(), "gateway")?.metadata.level, "debug");
    // Relayed through a member, it reaches the other gateway's listeners too (the relay
    // learns within its probe interval that someone listens there: ask until it shows).
    let k = 0;
    const relayed = () => m2.events().find((e) => e.location === "gateway" && e.metadata.message === "Handling API request");
    await waitUntil("a request line of the first gateway on the second gateway's monitor", 30_000, async () => {
      const set = await c.lxc("cluster", "set", "member2", `user.relay-${k++}`, "yes");
      assert.equal(set.code, 0, set.stderr);
      return !!relayed();
    }, 500).catch((e: Error) => {
      throw new Error(`${e.message}; monitor 2 printed: ${m2.output().slice(-3000)}`);
    });
    assert.equal(relayed()!.metadata.level, "debug");
    // Never twice: the relaying gateway's own listeners are not sent its lines back.
    const lines = (out: string) => out.split("\n").filter((l) => l.includes('"Handling API request"'));
    assert.equal(new Set(lines(m.output())).size, lines(m.output()).length, "a line twice on the first gateway");
    assert.equal(new Set(lines(m2.output())).size, lines(m2.output()).length, "a line twice on the second gateway");
    assert.ok([...m.events(), ...m2.events()].every((e) => e.type === "logging"), "--type=logging: nothing else");
    m.stop();
    m2.stop();
  });

  test("a lifecycle event written through one gateway reaches a monitor on the other, located where it happened", async () => {
    const m2 = jsonMonitor(["--type=lifecycle"], second);
    monitors.push(m2);
    // No logging listener needed: wait for the websocket by sending until the event shows.
    let n = 0;
    await waitUntil("cluster-member-updated on the second gateway", 30_000, async () => {
      const set = await c.lxc("cluster", "set", "member2", `user.events-${n++}`, "yes");
      assert.equal(set.code, 0, set.stderr);
      return m2.events().some((e) => e.metadata.action === "cluster-member-updated");
    }, 500);
    const ev = m2.events().find((e) => e.metadata.action === "cluster-member-updated")!;
    assert.equal(ev.type, "lifecycle");
    assert.equal(ev.location, "gateway");
    assert.equal(ev.metadata.source, "/1.0/cluster/members/member2");
    assert.ok(m2.events().every((e) => e.type === "lifecycle"));
    m2.stop();
  });
});
