// The members' own events, in process (no gRPC): the member side (MemberEventBus)
// streams logging events to subscribed gateways, greets each new stream, honours the
// type filter and drops events for a stream that does not keep up; the gateway side
// (MemberEventStreams) keeps one stream per member while wanted, follows membership,
// reopens a broken stream and closes them all after lingering.
import { GatewayLogRelay } from "../../services/api/src/events/gateway-relay.ts";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import type * as grpc from "@grpc/grpc-js";
import type { EventsRequest, MemberEvent } from "../../proto/gen/cluster.ts";
import { MAX_BUFFERED, MemberEventBus } from "../../services/api/src/events/member-events.ts";
import { MemberEventStreams, type MemberAddress } from "../../services/api/src/events/member-streams.ts";

/** What the bus uses of a server stream. */
class FakeServerStream extends EventEmitter {
  written: MemberEvent[] = [];
  writableLength = 0;
  writableEnded = false;
  constructor(readonly request: EventsRequest) {
    super();
  }
  write(ev: MemberEvent): boolean {
    this.written.push(ev);
    return true;
  }
  end(): void {
    this.writableEnded = true;
  }
  getPeer(): string {
    return "127.0.0.1:1234";
  }
}

const asCall = (s: FakeServerStream) => s as unknown as grpc.ServerWritableStream<EventsRequest, MemberEvent>;
const bodies = (s: FakeServerStream) => s.written.map((e) => JSON.parse(e.body) as { type: string; location: string; metadata: { message: string; level: string } });

test("member side: a gateway's relayed logging events reach the other gateways' logging streams, never its own", () => {
  const bus = new MemberEventBus(() => "member7");
  const g1 = new FakeServerStream({ types: ["logging"], gateway: "g1" });
  const g2 = new FakeServerStream({ types: [], gateway: "g2" });
  const g3 = new FakeServerStream({ types: ["lifecycle"], gateway: "g3" });
  for (const s of [g1, g2, g3]) bus.handle(asCall(s));
  const line = JSON.stringify({ type: "logging", timestamp: "t", metadata: { message: "Handling API request", level: "debug", context: {} }, location: "gateway1" });
  assert.equal(bus.relay("g1", []), 1, "an empty relay only asks: g2 listens (g3 wants no logging, g1 is the asker)");
  assert.equal(bus.relay("g1", [line]), 1);
  assert.deepEqual(bodies(g2).map((b) => [b.metadata.message, b.location]).slice(1), [["Handling API request", "gateway1"]]);
  assert.equal(bodies(g1).length, 1, "g1 got only its greeting: its own line is not sent back");
  assert.equal(g3.written.length, 0);
  assert.equal(bus.relay("g2", []), 1, "from g2's side, g1 listens");
});

test("member side: logging events to every open stream, greeted, filtered by type, dropped when a stream lags", () => {
  const bus = new MemberEventBus(() => "member7");
  bus.log("info", "nobody listens: not even built");
  const logging = new FakeServerStream({ types: ["logging"], gateway: "g1" });
  const lifecycleOnly = new FakeServerStream({ types: ["lifecycle"], gateway: "g2" });
  bus.handle(asCall(logging));
  bus.handle(asCall(lifecycleOnly));
  assert.equal(bus.streams, 2);
  assert.deepEqual(bodies(logging).map((b) => [b.metadata.message, b.metadata.level, b.location]), [["Event listener server handler started", "debug", "member7"]]);
  assert.equal(lifecycleOnly.written.length, 0, "a lifecycle-only stream is not greeted with a logging event");

  bus.log("info", "coordinator: evacuate plan p1: executing in term 2");
  assert.equal(bodies(logging)[1].metadata.message, "coordinator: evacuate plan p1: executing in term 2");
  assert.equal(logging.written[1].type, "logging");
  assert.equal(lifecycleOnly.written.length, 0);

  logging.writableLength = MAX_BUFFERED + 1;
  bus.log("info", "dropped: the gateway does not read");
  assert.equal(logging.written.length, 2);
  logging.writableLength = 0;

  logging.emit("cancelled");
  assert.ok(logging.writableEnded);
  assert.equal(bus.streams, 1);
  bus.log("info", "after the gateway went");
  assert.equal(logging.written.length, 2);
});

/** What the gateway side uses of a client stream. */
class FakeClientStream extends EventEmitter {
  cancelled = false;
  cancel(): void {
    this.cancelled = true;
    this.emit("error", new Error("1 CANCELLED"));
  }
}

async function until(what: string, cond: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("gateway side: a stream per member while wanted, following membership and failures; closed after lingering", async () => {
  let members: MemberAddress[] = [{ name: "m1", address: "a1" }];
  const opened: { address: string; types: string[]; s: FakeClientStream }[] = [];
  const delivered: string[] = [];
  const streams = new MemberEventStreams({
    members: async () => members,
    open: (address, types) => {
      const s = new FakeClientStream();
      opened.push({ address, types, s });
      return s as unknown as grpc.ClientReadableStream<MemberEvent>;
    },
    deliver: (type, body) => delivered.push(`${type} ${body}`),
    types: ["logging"],
    refreshMs: 10,
    lingerMs: 40,
  });
  try {
    assert.equal(opened.length, 0, "nothing until a listener wants it");
    streams.want(true);
    await until("the stream to m1", () => streams.open.includes("a1"));
    assert.deepEqual(opened.map((o) => [o.address, o.types]), [["a1", ["logging"]]]);
    opened[0].s.emit("data", { type: "logging", body: "{}" });
    assert.deepEqual(delivered, ["logging {}"]);

    members = [...members, { name: "m2", address: "a2" }];
    await until("a stream to the member that joined", () => streams.open.includes("a2"));
    members = members.filter((m) => m.name !== "m1");
    await until("the removed member's stream to go", () => !streams.open.includes("a1"));
    assert.ok(opened[0].s.cancelled);

    // A broken stream (member restarted) is opened again at the next round.
    const before = opened.length;
    opened.find((o) => o.address === "a2")!.s.emit("error", new Error("14 UNAVAILABLE"));
    await until("the stream to a2 again", () => opened.length > before && streams.open.includes("a2"));

    // No listener wants it any more: the streams linger, then close; wanted again meanwhile, they stay.
    streams.want(false);
    streams.want(true);
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(streams.open, ["a2"]);
    streams.want(false);
    await until("the streams to close after lingering", () => streams.open.length === 0);
    assert.ok(opened.filter((o) => o.address === "a2").at(-1)!.s.cancelled);
    const count = opened.length;
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(opened.length, count, "no rounds after they closed");
  } finally {
    streams.close();
  }
});

test("gateway side: its own lines go to the first member that answers, only while another gateway listens", async () => {
  const calls: { address: string; gateway: string; bodies: string[] }[] = [];
  let listening = 0;
  let downAddress = "";
  const relay = new GatewayLogRelay({
    id: "g1",
    members: async () => [
      { name: "member2", address: "10.0.0.2:1" },
      { name: "member1", address: "10.0.0.1:1" },
    ],
    relay: async (address, gateway, bodies) => {
      if (address === downAddress) throw new Error("unreachable");
      calls.push({ address, gateway, bodies });
      return listening;
    },
    probeMs: 5,
    flushMs: 1,
  });
  try {
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 2_000 && !ok(); i++) await new Promise((r) => setTimeout(r, 2));
      assert.ok(ok(), what);
    };
    await until("a first probe", () => calls.length > 0);
    assert.deepEqual(calls[0], { address: "10.0.0.1:1", gateway: "g1", bodies: [] }, "an empty relay to member1 (first by name) only asks");
    relay.push("dropped: nobody listens");
    assert.equal(relay.wanted, false);

    listening = 1;
    await until("the probe to learn that someone listens", () => relay.wanted);
    relay.push("line 1");
    relay.push("line 2");
    await until("the lines sent", () => calls.some((c) => c.bodies.length > 0));
    assert.deepEqual(calls.find((c) => c.bodies.length > 0)!.bodies, ["line 1", "line 2"], "batched, in order; the early line was never queued");

    downAddress = "10.0.0.1:1";
    relay.push("line 3");
    await until("line 3 through member2", () => calls.some((c) => c.bodies.includes("line 3")));
    assert.equal(calls.find((c) => c.bodies.includes("line 3"))!.address, "10.0.0.2:1");
  } finally {
    relay.close();
  }
});
