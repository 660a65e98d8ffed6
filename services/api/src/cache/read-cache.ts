// Reads the gateway serves from memory: results of queries on a few small tables
// (config, members, groups), dropped as soon as the database's Watch stream reports a
// change to one of their tables, and whenever this gateway writes anything. While
// the stream is not live (starting, broken, reconnecting) nothing is cached, so a
// missed change can never leave a stale answer behind. A read may still be older
// than a write another gateway finished a moment ago, by the stream's delivery delay
// (milliseconds); every read that guards a write (preconditions, ETags checked in
// the write) goes to the database itself.
import type { WatchEvent } from "../../../../proto/gen/database.ts";

interface Entry {
  tables: readonly string[];
  value: Promise<unknown>;
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

  constructor(source: WatchSource) {
    this.stop = source.watch({
      onLive: () => {
        this.live = true;
      },
      onReset: () => {
        this.live = false;
        this.clear();
      },
      onChange: (e) => this.invalidate(e.tables),
    });
  }

  /** `load()`'s result for `key`, from memory while no table in `tables` changed. */
  get<T>(key: string, tables: readonly string[], load: () => Promise<T>): Promise<T> {
    if (!this.live) return load();
    const hit = this.entries.get(key);
    if (hit) return hit.value as Promise<T>;
    const generation = this.generation;
    const value = load();
    this.entries.set(key, { tables, value });
    value.then(
      () => {
        // Changed while loading: the answer may predate the change.
        if (generation !== this.generation) this.drop(key, value);
      },
      () => this.drop(key, value),
    );
    return value;
  }

  /** Whether answers come from memory now (the Watch stream is live). */
  get isLive(): boolean {
    return this.live;
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
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  close(): void {
    this.stop();
    this.entries.clear();
  }

  private drop(key: string, value: Promise<unknown>): void {
    if (this.entries.get(key)?.value === value) this.entries.delete(key);
  }
}
