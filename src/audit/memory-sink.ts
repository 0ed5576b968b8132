/** Keeps audit records in memory: the test double's `events` (array, async iterable, waitFor). */
import type { AuditRecord, AuditSink, AuditEventType } from './events.js';

/**
 * The record of one event type (a union for a union of types). Not `Extract<AuditRecord, …>`: the
 * server events share one interface whose `event` is itself a union, which Extract would drop.
 */
export type AuditRecordOf<T extends AuditEventType> = AuditRecord extends infer R
  ? R extends { event: infer E }
    ? T extends E
      ? R & { event: T }
      : never
    : never
  : never;

type Predicate = (r: AuditRecord) => boolean;

export interface WaitForOptions {
  /** Milliseconds before waitFor rejects (default: the log's `waitForTimeoutMs`). */
  timeout?: number;
}

/**
 * Under jest's and vitest's 5 s test timeout and mocha's 2 s, so a missing event fails the test
 * with waitFor's own message (naming the events seen) instead of the runner's bare timeout.
 * Events arrive within milliseconds of the client call that causes them.
 */
export const DEFAULT_WAIT_FOR_TIMEOUT_MS = 1500;

/** What the log saw, short: the last few events, with the path each one names. */
function seen(records: readonly AuditRecord[], last = 10): string {
  if (records.length === 0) return 'none';
  const name = (r: AuditRecord) => {
    const where = 'path' in r && typeof r.path === 'string' ? r.path : 'from' in r && typeof r.from === 'string' ? r.from : undefined;
    return where === undefined ? r.event : `${r.event} ${where.length > 40 ? where.slice(0, 39) + '…' : where}`;
  };
  const shown = records.slice(-last).map(name);
  return (records.length > last ? `… ${records.length - last} earlier, ` : '') + shown.join(', ');
}

interface Waiter {
  match: Predicate;
  resolve: (r: AuditRecord) => void;
  reject: (e: Error) => void;
}

/**
 * An array of the records so far (index it, filter it, check its length) that is also an async
 * iterable of all records, past and future, and can wait for one.
 */
export class EventLog extends Array<AuditRecord> implements AuditSink, AsyncIterable<AuditRecord> {
  // map/filter/slice return plain arrays, not new logs.
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }
  /** The records so far (this log itself; kept for readability: `events.all`). */
  get all(): AuditRecord[] {
    return this;
  }
  #waiters = new Set<Waiter>();
  #readers = new Set<() => void>();
  /** Why the log closed ("test server closed"), once it has. */
  #closedBecause: string | undefined;
  #defaultTimeout = DEFAULT_WAIT_FOR_TIMEOUT_MS;

  constructor(opts: { waitForTimeoutMs?: number | undefined } = {}) {
    super();
    // Array.from and friends call `new EventLog(length)`: only an options object sets anything.
    if (typeof opts === 'object' && opts.waitForTimeoutMs !== undefined) this.#defaultTimeout = checkedTimeout(opts.waitForTimeoutMs, 'waitForTimeoutMs');
  }

  write(record: AuditRecord): void {
    this.push(record);
    for (const w of this.#waiters) {
      if (w.match(record)) {
        this.#waiters.delete(w);
        w.resolve(record);
      }
    }
    for (const r of this.#readers) r();
  }

  /** Events of one type, in order; with `match`, only those it accepts. */
  ofType<T extends AuditEventType>(type: T, match?: (r: AuditRecordOf<T>) => boolean): AuditRecordOf<T>[] {
    return this.filter((r) => r.event === type && (!match || match(r as AuditRecordOf<T>))) as AuditRecordOf<T>[];
  }

  /**
   * Resolves with the first event matching `what` (and `match`, when given) — including one that
   * already happened, so a test can wait after the client call returns. Rejects after the timeout,
   * or as soon as the log closes, naming the events it saw.
   */
  waitFor<T extends AuditEventType>(type: T, opts?: WaitForOptions): Promise<AuditRecordOf<T>>;
  waitFor<T extends AuditEventType>(type: T, match: (r: AuditRecordOf<T>) => boolean, opts?: WaitForOptions): Promise<AuditRecordOf<T>>;
  waitFor<R extends AuditRecord>(match: (r: AuditRecord) => r is R, opts?: WaitForOptions): Promise<R>;
  waitFor(match: Predicate, opts?: WaitForOptions): Promise<AuditRecord>;
  waitFor(
    what: AuditEventType | Predicate,
    matchOrOpts?: Predicate | WaitForOptions,
    maybeOpts?: WaitForOptions,
  ): Promise<AuditRecord> {
    const extra = typeof matchOrOpts === 'function' ? matchOrOpts : undefined;
    const opts = (typeof matchOrOpts === 'function' ? maybeOpts : matchOrOpts) ?? {};
    const match: Predicate = typeof what === 'function' ? what : (r) => r.event === what && (!extra || extra(r));
    const found = this.find(match);
    if (found) return Promise.resolve(found);
    const wanted = typeof what === 'string' ? `"${what}" ` : 'matching ';
    if (this.#closedBecause !== undefined) return Promise.reject(new Error(`${this.#closedBecause}; saw: ${seen(this)}`));
    let timeout: number;
    try {
      timeout = opts.timeout === undefined ? this.#defaultTimeout : checkedTimeout(opts.timeout, 'timeout');
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        match,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`no ${wanted}event within ${timeout} ms; saw: ${seen(this)}`));
      }, timeout);
      this.#waiters.add(w);
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<AuditRecord> {
    let i = 0;
    for (;;) {
      while (i < this.length) yield this[i++]!;
      if (this.#closedBecause !== undefined) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#readers.delete(wake);
          resolve();
        };
        this.#readers.add(wake);
      });
    }
  }

  /** Ends the iterators; pending and later waitFor calls reject with `reason` and what was seen. */
  async close(reason = 'event log closed'): Promise<void> {
    this.#closedBecause ??= reason;
    for (const r of this.#readers) r();
    for (const w of this.#waiters) w.reject(new Error(`${this.#closedBecause}; saw: ${seen(this)}`));
    this.#waiters.clear();
  }
}

function checkedTimeout(ms: number, name: string): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new TypeError(`${name} must be a number of milliseconds ≥ 0, got ${String(ms)}`);
  return ms;
}
