/**
 * A token bucket: one bandwidth limit (bytes per second) shared by every request that draws on it.
 * Requests queue in arrival order behind one timer; nothing is polled. A request larger than the
 * bucket is let through once the bucket is full and leaves it in debt, so later requests pay for it.
 * The clock is injected so tests can run simulated seconds.
 */

/** Time in milliseconds and one-shot timers; the system clock in production, a fake one in tests. */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; the returned function cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, ms);
    // A waiting request is held by its session's socket, not by this timer.
    t.unref();
    return () => clearTimeout(t);
  },
};

/** Smallest bucket: one OpenSSH-sized request (32 KiB) passes without debt. */
const MIN_CAPACITY = 32 * 1024;

/** A tenth of a second of traffic: bursts stay small, so a rate over 10 s is within about 1 %. */
export function capacityFor(bytesPerSecond: number): number {
  return Math.max(MIN_CAPACITY, Math.ceil(bytesPerSecond / 10));
}

/** A request waiting for tokens; `release` lets it go without taking any (session ended, limit lifted). */
export interface Ticket {
  readonly admitted: Promise<void>;
  release(): void;
}

interface Waiter {
  readonly bytes: number;
  readonly since: number;
  readonly resolve: () => void;
}

export class TokenBucket {
  #rate: number;
  #capacity: number;
  #tokens: number;
  #last: number;
  #queue: Waiter[] = [];
  #taken = 0;
  #cancelTimer: (() => void) | undefined;
  readonly #clock: Clock;
  readonly #onWait: ((seconds: number) => void) | undefined;

  /** `onWait` hears how long each queued request waited (metrics). */
  constructor(bytesPerSecond: number, clock: Clock = systemClock, onWait?: (seconds: number) => void) {
    this.#clock = clock;
    this.#onWait = onWait;
    this.#rate = bytesPerSecond;
    this.#capacity = capacityFor(bytesPerSecond);
    this.#tokens = this.#capacity;
    this.#last = clock.now();
  }

  get rate(): number {
    return this.#rate;
  }

  /** Bytes asked of this bucket so far (admitted or waiting): shows whether it is in use. */
  get taken(): number {
    return this.#taken;
  }

  /** Requests waiting now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** undefined: admitted now (the common case costs no promise); else a ticket that resolves once admitted. */
  take(bytes: number): Ticket | undefined {
    this.#taken += bytes;
    if (this.#queue.length === 0) {
      this.#refill();
      if (this.#tokens >= Math.min(bytes, this.#capacity)) {
        this.#tokens -= bytes;
        return undefined;
      }
    }
    let resolve!: () => void;
    const admitted = new Promise<void>((r) => (resolve = r));
    const waiter: Waiter = { bytes, since: this.#clock.now(), resolve };
    this.#queue.push(waiter);
    this.#schedule();
    return { admitted, release: () => this.#release(waiter) };
  }

  /** A new rate (config reload): what accrued so far at the old rate is kept; waiters are rescheduled. */
  setRate(bytesPerSecond: number): void {
    if (bytesPerSecond === this.#rate) return;
    this.#refill();
    this.#rate = bytesPerSecond;
    this.#capacity = capacityFor(bytesPerSecond);
    this.#tokens = Math.min(this.#tokens, this.#capacity);
    this.#unschedule();
    this.#admit();
  }

  /** Lets every waiter go (the limit was lifted). */
  releaseAll(): void {
    this.#unschedule();
    for (const w of this.#queue.splice(0)) w.resolve();
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
    this.#last = now;
  }

  /** Admits waiters from the head while tokens last, then sets the timer for the next one. */
  #admit(): void {
    this.#refill();
    let n = 0;
    for (const w of this.#queue) {
      if (this.#tokens < Math.min(w.bytes, this.#capacity)) break;
      this.#tokens -= w.bytes;
      n++;
    }
    const done = this.#queue.splice(0, n);
    this.#schedule();
    const now = this.#clock.now();
    for (const w of done) {
      this.#onWait?.((now - w.since) / 1000);
      w.resolve();
    }
  }

  #schedule(): void {
    const head = this.#queue[0];
    if (!head || this.#cancelTimer) return;
    const missing = Math.min(head.bytes, this.#capacity) - this.#tokens;
    const ms = Math.max(1, Math.ceil((missing * 1000) / this.#rate));
    this.#cancelTimer = this.#clock.setTimer(ms, () => {
      this.#cancelTimer = undefined;
      this.#admit();
    });
  }

  #unschedule(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  #release(w: Waiter): void {
    const i = this.#queue.indexOf(w);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    // The head left: the next one may be admitted sooner.
    if (i === 0) {
      this.#unschedule();
      this.#admit();
    }
    w.resolve();
  }
}
