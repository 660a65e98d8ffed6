// A gateway's own `logging` events for the listeners of the OTHER gateways. Gateways
// do not know each other, but every gateway with a logging listener streams from
// every member (member-streams.ts); so a gateway hands its lines to one member
// (ClusterMember.RelayEvents), which passes them to every gateway stream but the
// sender's. Nothing is sent while no other gateway listens: every PROBE_MS an empty
// relay asks the member how many do, and each relay's reply says it again.
import type { MemberAddress } from "./member-streams.ts";

export const PROBE_MS = 2_000;
/** Lines are batched this long: a request's log line costs no RPC of its own. */
export const FLUSH_MS = 50;
/** Lines waiting beyond this are dropped (a member that does not answer). */
const MAX_QUEUED = 1_000;

export interface GatewayRelayOptions {
  /** This gateway's id (random per process), also sent with its event streams. */
  id: string;
  members(): Promise<MemberAddress[]>;
  /** Hands `bodies` to the member at `address`; resolves to how many other gateways listen there. */
  relay(address: string, gateway: string, bodies: string[]): Promise<number>;
  probeMs?: number;
  flushMs?: number;
}

export class GatewayLogRelay {
  private listening = 0;
  private queue: string[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly probeTimer: NodeJS.Timeout;
  private sending = false;
  private closed = false;

  constructor(private readonly opts: GatewayRelayOptions) {
    this.probeTimer = setInterval(() => void this.flush(), opts.probeMs ?? PROBE_MS);
    this.probeTimer.unref();
    void this.flush();
  }

  /** Whether another gateway listens to logging events (as last heard). */
  get wanted(): boolean {
    return this.listening > 0;
  }

  push(body: string): void {
    if (!this.wanted || this.closed) return;
    if (this.queue.length >= MAX_QUEUED) return;
    this.queue.push(body);
    this.schedule();
  }

  private schedule(): void {
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush();
    }, this.opts.flushMs ?? FLUSH_MS);
  }

  /** Sends what is queued (or asks, with nothing queued) to the first member that answers, by name. */
  private async flush(): Promise<void> {
    if (this.sending || this.closed) return;
    this.sending = true;
    const bodies = this.queue;
    this.queue = [];
    try {
      const members = [...(await this.opts.members())].sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const m of members) {
        try {
          this.listening = await this.opts.relay(m.address, this.opts.id, bodies);
          return;
        } catch {
          // unreachable: the next one (every gateway streams from every member)
        }
      }
      this.listening = 0;
    } catch {
      this.listening = 0;
    } finally {
      this.sending = false;
      if (this.queue.length && !this.closed) this.schedule(); // lines that came meanwhile
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.probeTimer);
    clearTimeout(this.flushTimer);
  }
}
