// Reads the gateway serves from memory: results of queries on a few small tables
// (config, members, groups), dropped as soon as the database's Watch stream reports a
// change to one of their tables, and whenever this gateway writes to one. While
// the stream is not live (starting, broken, reconnecting) nothing is cached, so a
// missed change can never leave a stale answer behind. A read may still be older
// than a write another gateway finished a moment ago, by the stream's delivery delay
// (milliseconds); every read that guards a write (preconditions, ETags checked in
// the write) goes to the database itself.
//
// A change reported by the stream also loads again, at once and in the background,
// what was read in the last PREFETCH_WINDOW_MS: the coordinator's heartbeats rewrite
// `members` every second, and a request arriving after one would otherwise wait for
// linearizable reads (a Raft round across processes). No background load starts for
// a key while a load of it is in flight; a change meanwhile loads it once more after.
import type { WatchEvent } from "../../../../proto/gen/database.ts";

/** Reads this recent are loaded again as soon as a change drops them. */
export const PREFETCH_WINDOW_MS = 30_000;

interface Entry {
  tables: readonly string[];
  value: Promise<unknown>;
}

/** How a key was last read, to load it again after a change. */
interface Use {
  tables: readonly string[];
  load: () => Promise<unknown>;
  at: number;
}

export interface WatchSource {
  watch(handlers: { onChange(e: WatchEvent): void; onLive(): void; onReset(): void }): () => void;
}

export class ReadCache {
  private readonly entries = new Map<string, Entry>();
  private live = false;
  /** Bumped on every invalidation: a load that started before it is not stored. */
  private generation = 0;
  private readonly stop: () => void;
  private readonly listeners = new Set<(tables: readonly string[]) => void>();
  private readonly uses = new Map<string, Use>();
  /** Loads in flight per key, and the keys changed while one was. */
  private readonly loading = new Map<string, number>();
  private readonly again = new Set<string>();

  constructor(source: WatchSource) {
    this.stop = source.watch({
      onLive: () => {
        this.live = true;
      },
      onReset: () => {
        this.live = false;
        this.clear();
        this.uses.clear();
        this.again.clear();
      },
      onChange: (e) => this.invalidate(e.tables),
    });
  }

  /** `load()`'s result for `key`, from memory while no table in `tables` changed. */
  get<T>(key: string, tables: readonly string[], load: () => Promise<T>): Promise<T> {
    if (!this.live) return load();
    this.uses.set(key, { tables, load, at: Date.now() });
    return this.fetch(key, tables, load);
  }

  /** Whether answers come from memory now (the Watch stream is live). */
  get isLive(): boolean {
    return this.live;
  }

  private fetch<T>(key: string, tables: readonly string[], load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit) return hit.value as Promise<T>;
    const generation = this.generation;
    const value = load();
    this.entries.set(key, { tables, value });
    this.loading.set(key, (this.loading.get(key) ?? 0) + 1);
    const settled = () => {
      const left = (this.loading.get(key) ?? 1) - 1;
      if (left > 0) this.loading.set(key, left);
      else this.loading.delete(key);
      if (left <= 0 && this.again.delete(key)) this.prefetch(key, tables);
    };
    value.then(
      () => {
        // Changed while loading: the answer may predate the change.
        if (generation !== this.generation) this.drop(key, value);
        settled();
      },
      () => {
        this.drop(key, value);
        settled();
      },
    );
    return value;
  }

  /** Calls `listener` with the tables of every change (e.g. to forget trust answers); returns the unsubscribe. */
  onChange(listener: (tables: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  invalidate(tables: readonly string[]): void {
    this.generation++;
    for (const [key, e] of this.entries) if (e.tables.some((t) => tables.includes(t))) this.entries.delete(key);
    for (const l of this.listeners) l(tables);
    if (this.live) for (const key of this.uses.keys()) this.prefetch(key, tables);
  }

  /** Loads `key` again in the background if it was read recently and reads one of `tables`. */
  private prefetch(key: string, tables: readonly string[]): void {
    const use = this.uses.get(key);
    if (!use || !use.tables.some((t) => tables.includes(t))) return;
    if (Date.now() - use.at > PREFETCH_WINDOW_MS) {
      this.uses.delete(key);
      return;
    }
    if (this.loading.has(key)) {
      this.again.add(key);
      return;
    }
    if (this.live) void this.fetch(key, use.tables, use.load).catch(() => undefined);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  close(): void {
    this.stop();
    this.live = false;
    this.entries.clear();
    this.uses.clear();
    this.again.clear();
  }

  private drop(key: string, value: Promise<unknown>): void {
    if (this.entries.get(key)?.value === value) this.entries.delete(key);
  }
}
