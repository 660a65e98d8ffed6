// The gateway side of the members' own events (ClusterMember.Events, member-events.ts):
// while one of this gateway's /1.0/events listeners wants `logging` events, one stream
// per cluster member is kept open and what arrives is handed to the hub, which
// delivers it like any event (the body already says `location`: the member). The
// member list is read again every REFRESH_MS: a member that joined gets a stream, a
// removed one loses it, a broken stream is opened again. When the last such listener
// goes, the streams stay LINGER_MS more: every async `lxc` command opens /1.0/events
// without a type filter, and a run of commands should not reopen them each time.
import type { ClientReadableStream } from "@grpc/grpc-js";
import type { MemberEvent } from "../../../../proto/gen/cluster.ts";

export const REFRESH_MS = 2_000;
export const LINGER_MS = 15_000;

export interface MemberAddress {
  name: string;
  address: string;
}

export interface MemberStreamsOptions {
  /** The cluster's members now. */
  members(): Promise<MemberAddress[]>;
  /** Opens a member's event stream for `types`. */
  open(address: string, types: string[]): ClientReadableStream<MemberEvent>;
  /** Hands an event (LXD event JSON) to the listeners. */
  deliver(type: string, body: string): void;
  /** Event types asked of the members. */
  types: string[];
  refreshMs?: number;
  lingerMs?: number;
}

export class MemberEventStreams {
  private readonly streams = new Map<string, ClientReadableStream<MemberEvent>>();
  private timer: NodeJS.Timeout | undefined;
  private linger: NodeJS.Timeout | undefined;
  private refreshing = false;
  private closed = false;

  constructor(private readonly opts: MemberStreamsOptions) {}

  /** Listeners want the members' events (true) or no longer do (false: the streams linger, then close). */
  want(wanted: boolean): void {
    if (this.closed) return;
    if (wanted) {
      clearTimeout(this.linger);
      this.linger = undefined;
      this.timer ??= setInterval(() => void this.refresh(), this.opts.refreshMs ?? REFRESH_MS);
      // At once too: a member that joined since the last round gets its stream now.
      void this.refresh();
    } else if (this.timer && !this.linger) {
      this.linger = setTimeout(() => this.stop(), this.opts.lingerMs ?? LINGER_MS);
    }
  }

  /** Addresses with an open stream. */
  get open(): string[] {
    return [...this.streams.keys()];
  }

  private async refresh(): Promise<void> {
    if (this.refreshing || !this.timer) return;
    this.refreshing = true;
    try {
      const addresses = new Set((await this.opts.members()).map((m) => m.address));
      if (!this.timer) return; // stopped meanwhile
      for (const [address, s] of this.streams) {
        if (!addresses.has(address)) {
          this.streams.delete(address);
          s.cancel();
        }
      }
      for (const address of addresses) if (!this.streams.has(address)) this.connect(address);
    } catch {
      // The database is briefly unavailable: the streams already open carry on; next round.
    } finally {
      this.refreshing = false;
    }
  }

  private connect(address: string): void {
    const s = this.opts.open(address, this.opts.types);
    this.streams.set(address, s);
    const gone = () => {
      if (this.streams.get(address) === s) this.streams.delete(address);
    };
    s.on("data", (ev: MemberEvent) => this.opts.deliver(ev.type, ev.body));
    // An unreachable or restarted member: opened again at the next refresh.
    s.on("error", gone);
    s.on("end", gone);
  }

  private stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.linger);
    this.timer = this.linger = undefined;
    for (const s of this.streams.values()) s.cancel();
    this.streams.clear();
  }

  close(): void {
    this.closed = true;
    this.stop();
  }
}
