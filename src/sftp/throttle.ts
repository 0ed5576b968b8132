/**
 * One session's way through the bandwidth limits: the user's bucket (shared by all of that user's
 * sessions), then the server's. The buckets are owned by the server (src/server/bandwidth.ts) and
 * swapped on reload, so they are read at each request. Without limits a request costs two field
 * reads: no promise, no timer.
 */
import type { TokenBucket, Ticket } from './token-bucket.js';

export type Direction = 'upload' | 'download';

/** A limit per direction; undefined is unlimited. Fields change on reload. */
export interface DirectionBuckets {
  readonly upload: TokenBucket | undefined;
  readonly download: TokenBucket | undefined;
}

export interface BandwidthLimits {
  /** The user's own (or their group's) limits. */
  readonly user: DirectionBuckets;
  /** limits.bandwidth: every user's transfers together. */
  readonly server: DirectionBuckets;
}

const NONE: DirectionBuckets = Object.freeze({ upload: undefined, download: undefined });
export const UNLIMITED: BandwidthLimits = Object.freeze({ user: NONE, server: NONE });

export class Throttle {
  readonly #limits: BandwidthLimits;
  readonly #tickets = new Set<Ticket>();
  #ended = false;

  constructor(limits: BandwidthLimits) {
    this.#limits = limits;
  }

  /** undefined: go on now; else a promise that resolves once both limits let `bytes` through (never rejects). */
  admit(direction: Direction, bytes: number): Promise<void> | undefined {
    const own = this.#limits.user[direction];
    const all = this.#limits.server[direction];
    if ((own === undefined && all === undefined) || this.#ended) return undefined;
    const first = own && this.#through(own, bytes);
    if (first === undefined) return all && this.#through(all, bytes);
    return all ? first.then(() => this.#through(all, bytes)) : first;
  }

  /**
   * The session is ending: waiting requests go on at once (a WRITE's data is still written, a READ's
   * reply is dropped with the channel), so none is left waiting and close() is not held up.
   */
  end(): void {
    this.#ended = true;
    for (const t of this.#tickets) t.release();
    this.#tickets.clear();
  }

  #through(bucket: TokenBucket, bytes: number): Promise<void> | undefined {
    if (this.#ended) return undefined;
    const ticket = bucket.take(bytes);
    if (!ticket) return undefined;
    this.#tickets.add(ticket);
    return ticket.admitted.then(() => void this.#tickets.delete(ticket));
  }
}
