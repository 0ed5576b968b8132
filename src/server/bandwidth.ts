/**
 * The bandwidth buckets of one server: one per user and direction, shared by all of that user's
 * sessions and connections in this process, and the server-wide pair (limits.bandwidth). Reload
 * changes rates in place, so running sessions follow the new config; a lifted limit lets its
 * waiters go. With several workers each process keeps its own buckets.
 */
import type { ServerConfig } from '../config/load.js';
import type { BandwidthSetting } from '../config/bandwidth.js';
import { TokenBucket, systemClock, type Clock } from '../sftp/token-bucket.js';
import type { BandwidthLimits, Direction } from '../sftp/throttle.js';

type Buckets = { upload: TokenBucket | undefined; download: TokenBucket | undefined };

export interface BandwidthRegistryOptions {
  /** Injected by tests; the system clock otherwise. */
  clock?: Clock | undefined;
  /** How long a request waited for a bucket (metrics). */
  onWait?: ((direction: Direction, seconds: number) => void) | undefined;
}

/** The instances moving bytes under each limit (src/shared/redis-store.ts); rejects when unreachable. */
export interface ActivityStore {
  activeInstances(names: readonly string[], ttlMs: number): Promise<number[]>;
}

/** How often a shared limit is re-split: a new instance's first tick may run at the full rate. */
const SHARE_TICK_MS = 500;

export class BandwidthRegistry {
  readonly #users = new Map<string, BandwidthLimits & { user: Buckets }>();
  readonly #server: Buckets = { upload: undefined, download: undefined };
  /** Each bucket's configured rate and how many instances share it now (1: this one alone). */
  readonly #configured = new Map<TokenBucket, { rate: number; share: number; seen: number }>();
  #shareTimer: NodeJS.Timeout | undefined;
  readonly #clock: Clock;
  readonly #onWait: BandwidthRegistryOptions['onWait'];

  constructor(config: ServerConfig, opts: BandwidthRegistryOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#onWait = opts.onWait;
    this.reload(config);
  }

  /** The limits a session of `username` passes through (unlimited ones cost nothing). */
  forUser(username: string): BandwidthLimits {
    let limits = this.#users.get(username);
    if (!limits) {
      // Not in the config now (removed by a reload after this login): no limit of its own.
      limits = { user: { upload: undefined, download: undefined }, server: this.#server };
      this.#users.set(username, limits);
    }
    return limits;
  }

  /** New rates for the users of `config` and the server; users no longer configured keep theirs. */
  reload(config: ServerConfig): void {
    this.#apply(this.#server, config.limits.bandwidth);
    for (const u of config.users) this.#apply(this.forUser(u.username).user, u.bandwidth);
  }

  #apply(buckets: Buckets, setting: BandwidthSetting | undefined): void {
    this.#set(buckets, 'upload', setting?.uploadBytesPerSecond);
    this.#set(buckets, 'download', setting?.downloadBytesPerSecond);
  }

  #set(buckets: Buckets, direction: Direction, rate: number | undefined): void {
    const bucket = buckets[direction];
    if (rate === undefined) {
      bucket?.releaseAll();
      if (bucket) this.#configured.delete(bucket);
      buckets[direction] = undefined;
    } else if (bucket) {
      const c = this.#configured.get(bucket)!;
      c.rate = rate;
      bucket.setRate(rate / c.share);
    } else {
      const onWait = this.#onWait;
      const created = new TokenBucket(rate, this.#clock, onWait && ((s) => onWait(direction, s)));
      this.#configured.set(created, { rate, share: 1, seen: 0 });
      buckets[direction] = created;
    }
  }

  /**
   * Splits each limit among the instances moving bytes under it (config "shared"): every tick, the
   * buckets used since the last one are marked active in the store, and each runs at its rate
   * divided by the number of active instances. Unreachable store: each instance runs at the full
   * rate, as one alone would.
   */
  shareThrough(store: ActivityStore): void {
    if (this.#shareTimer) return;
    this.#shareTimer = setInterval(() => void this.#share(store), SHARE_TICK_MS);
    this.#shareTimer.unref();
  }

  stopSharing(): void {
    clearInterval(this.#shareTimer);
    this.#shareTimer = undefined;
  }

  async #share(store: ActivityStore): Promise<void> {
    const active: [string, TokenBucket][] = [];
    const named: [string, Buckets][] = [['*', this.#server], ...[...this.#users].map(([u, l]): [string, Buckets] => [`user:${u}`, l.user])];
    for (const [name, buckets] of named)
      for (const d of ['upload', 'download'] as const) {
        const b = buckets[d];
        const c = b && this.#configured.get(b);
        if (!b || !c || b.taken === c.seen) continue;
        c.seen = b.taken;
        active.push([`${name}:${d}`, b]);
      }
    if (active.length === 0) return;
    const counts = await store.activeInstances(active.map(([n]) => n), SHARE_TICK_MS * 4).catch(() => active.map(() => 1));
    active.forEach(([, b], i) => {
      const c = this.#configured.get(b);
      if (!c) return;
      c.share = Math.max(1, counts[i] ?? 1);
      b.setRate(c.rate / c.share);
    });
  }
}
