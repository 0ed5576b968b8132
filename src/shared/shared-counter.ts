/**
 * A quota root's usage kept in the shared store, so instances sharing a root enforce one quota.
 * get() must answer at once (checks run between two awaits), so it answers the last totals the
 * store sent plus this instance's changes not yet acknowledged; every change is sent at once, one
 * batch in flight at a time, and each answer brings the other instances' changes too; a timer
 * fetches them when this instance is idle. Another instance's writes are therefore seen within one
 * round trip of the next change here, or within `refreshMs`; near a limit the ledger asks for them
 * first (Ledger.freshen).
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
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly store: UsageStore,
    readonly root: string,
    initial: Usage = ZERO,
    refreshMs = 250,
  ) {
    this.#base = initial;
    this.#timer = setInterval(() => this.refresh(), refreshMs);
    this.#timer.unref();
  }

  get(): Usage {
    return plus(plus(this.#base, this.#inflight ?? ZERO), this.#pending);
  }

  add(bytes: number, files: number): void {
    this.#pending = plus(this.#pending, { bytes, files });
    this.#flush();
  }

  /** Fetches the other instances' changes (and sends ours, if some wait). */
  refresh(): void {
    if (this.#inflight || this.#pending.bytes !== 0 || this.#pending.files !== 0) return this.#flush();
    this.store.usage(this.root).then(
      (u) => {
        if (u && !this.#inflight) this.#base = { bytes: u.bytes, files: u.files };
      },
      () => undefined,
    );
  }

  /** Near a limit: the store's totals now (changes in flight arrive with their own answer). */
  async sync(): Promise<void> {
    const u = await this.store.usage(this.root).catch(() => undefined);
    if (u && !this.#inflight) this.#base = { bytes: u.bytes, files: u.files };
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #flush(): void {
    if (this.#inflight || (this.#pending.bytes === 0 && this.#pending.files === 0)) return;
    const batch = this.#pending;
    this.#inflight = batch;
    this.#pending = ZERO;
    this.store.addUsage(this.root, batch.bytes, batch.files).then(
      (u) => {
        this.#base = { bytes: u.bytes, files: u.files };
        this.#inflight = undefined;
        this.#flush();
      },
      () => {
        // Unreachable: kept, and sent again by the next change or refresh.
        this.#pending = plus(batch, this.#pending);
        this.#inflight = undefined;
      },
    );
  }
}
