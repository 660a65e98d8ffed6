// A member's own events (the member side of ClusterMember.Events): what the member
// process logs becomes LXD `logging` events located at the member, handed to every
// gateway stream open at that moment (gateways open one while a /1.0/events listener
// wants logging events: member-streams.ts). Nothing is stored: an event nobody listens
// to is gone, as LXD's logging events are. A slow stream cannot make the member hold
// unbounded memory: past MAX_BUFFERED bytes waiting on a stream, its events are dropped.
import type * as grpc from "@grpc/grpc-js";
import type { EventsRequest, MemberEvent } from "../../../../proto/gen/cluster.ts";
import type { EventType, LxdEvent } from "./events.ts";

/** LXD's log levels, most verbose first (lxc monitor --loglevel filters on them). */
export type LogLevel = "debug" | "info" | "warning" | "error";

/** Bytes a stream may have waiting before its events are dropped. */
export const MAX_BUFFERED = 1 << 20;

interface Subscriber {
  types: Set<string>;
  /** The gateway streaming (EventsRequest.gateway; "" when it did not say). */
  gateway: string;
  send(ev: MemberEvent): void;
}

export class MemberEventBus {
  private readonly subscribers = new Set<Subscriber>();

  /** `location`: this member's name. */
  constructor(private readonly location: () => string) {}

  /** A `logging` event (LXD's shape: message, level, context). */
  log(level: LogLevel, message: string, context: Record<string, string> = {}): void {
    if (this.subscribers.size === 0) return;
    this.publish({ type: "logging", timestamp: new Date().toISOString(), metadata: { message, level, context }, location: this.location() });
  }

  publish(ev: LxdEvent): void {
    const wanted = [...this.subscribers].filter((s) => s.types.size === 0 || s.types.has(ev.type));
    if (wanted.length === 0) return;
    const out: MemberEvent = { type: ev.type, body: JSON.stringify(ev) };
    for (const s of wanted) s.send(out);
  }

  /**
   * A gateway's own logging events (RelayEvents), handed to the other gateways'
   * streams that want logging; returns how many other gateways have one open.
   */
  relay(gateway: string, bodies: string[]): number {
    const others = [...this.subscribers].filter((s) => s.gateway !== gateway && (s.types.size === 0 || s.types.has("logging")));
    for (const body of bodies) for (const s of others) s.send({ type: "logging", body });
    return new Set(others.map((s) => s.gateway)).size;
  }

  /** How many gateway streams are open. */
  get streams(): number {
    return this.subscribers.size;
  }

  /** The ClusterMember.Events handler: streams this member's events until the gateway cancels. */
  handle(call: grpc.ServerWritableStream<EventsRequest, MemberEvent>): void {
    const types = new Set<string>(call.request.types);
    const s: Subscriber = {
      types,
      gateway: call.request.gateway,
      send: (ev) => {
        if (call.writableLength > MAX_BUFFERED) return;
        call.write(ev);
      },
    };
    const end = () => {
      this.subscribers.delete(s);
      if (!call.writableEnded) call.end();
    };
    call.on("cancelled", end);
    call.on("error", end);
    call.on("close", end);
    this.subscribers.add(s);
    // As LXD logs for every new listener; also tells the gateway the stream is up.
    if (types.size === 0 || types.has("logging" satisfies EventType)) {
      s.send({ type: "logging", body: JSON.stringify(this.startedEvent(call.getPeer())) });
    }
  }

  private startedEvent(remote: string): LxdEvent {
    return { type: "logging", timestamp: new Date().toISOString(), metadata: { message: "Event listener server handler started", level: "debug", context: { remote } }, location: this.location() };
  }
}
