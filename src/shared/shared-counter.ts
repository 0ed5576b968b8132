/**
 * A quota root's usage kept in the shared store, so instances sharing a root enforce one quota.
 * get() must answer at once (checks run between two awaits), so it answers the last totals the
 * store sent plus this instance's changes not yet acknowledged; every change is sent at once, one
 * batch in flight at a time, and each answer brings the other instances' changes too; a read of
 * a count older than `maxAgeMs` fetches them (no timer: an idle root costs nothing). Another
 * instance's writes are therefore seen within one round trip of the next change or read here; near
 * a limit the ledger waits for them first (Ledger.freshen).
 * While the store is unreachable, changes wait here and are sent when it answers again.
 */
import type { Usage, UsageCounter } from '../quota/usage.js';
import type { SharedUsage } from './redis-store.js';

export interface UsageStore {
  usage(root: string): Promise<SharedUsage | undefined>;
  addUsage(root: string, bytes: number, files: number): Promise<SharedUsage>;
}

const ZERO: Usage = Object.freeze({ bytes: 0, files: 0 });
const plus = (a: Usage, b: Usage): Usage => ({ bytes: a.bytes + b.bytes, files: a.files + b.files });

export class SharedCounter implements UsageCounter {
  #base: Usage;
  #pending: Usage = ZERO;
  #inflight: Usage | undefined;
  #sending: Promise<void> = Promise.resolve();
  #fetched = 0;

  constructor(
    readonly store: UsageStore,
    readonly root: string,
    initial: Usage = ZERO,
    /** How old the other instances' changes may be when read; fetched on a read, not on a timer. */
    readonly maxAgeMs = 250,
  ) {
    this.#base = initial;
  }

  get(): Usage {
    // Refreshed when read, not on a timer: a root nobody uses costs the store nothing.
    if (Date.now() - this.#fetched > this.maxAgeMs) void this.sync();
    return plus(plus(this.#base, this.#inflight ?? ZERO), this.#pending);
  }

  add(bytes: number, files: number): void {
    this.#pending = plus(this.#pending, { bytes, files });
    void this.#flush();
  }

  /** The store's totals now, with the other instances' changes; ours that wait are sent first (never rejects). */
  async sync(): Promise<void> {
    this.#fetched = Date.now();
    if (this.#inflight || this.#pending.bytes !== 0 || this.#pending.files !== 0) return this.#flush();
    const u = await this.store.usage(this.root).catch(() => undefined);
    if (u && !this.#inflight) this.#base = { bytes: u.bytes, files: u.files };
  }

  /** Sends what waits, one batch in flight at a time; its answer is the store's new totals. */
  #flush(): Promise<void> {
    if (this.#inflight || (this.#pending.bytes === 0 && this.#pending.files === 0)) return this.#sending;
    const batch = this.#pending;
    this.#inflight = batch;
    this.#pending = ZERO;
    this.#sending = this.store.addUsage(this.root, batch.bytes, batch.files).then(
      (u) => {
        this.#base = { bytes: u.bytes, files: u.files };
        this.#fetched = Date.now();
        this.#inflight = undefined;
        // Changes made meanwhile go next, in a new batch (returning #sending itself would chain it to itself).
        if (this.#pending.bytes !== 0 || this.#pending.files !== 0) return this.#flush();
        return undefined;
      },
      () => {
        // Unreachable: kept, and sent again by the next change or read.
        this.#pending = plus(batch, this.#pending);
        this.#inflight = undefined;
      },
    );
    return this.#sending;
  }
}
