/** Keeps audit records in memory: the test double's `events` (array, async iterable, waitFor). */
import type { AuditRecord, AuditSink, AuditEventType } from './events.js';

type Predicate = (r: AuditRecord) => boolean;

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
  #waiters = new Set<{ match: Predicate; resolve: (r: AuditRecord) => void }>();
  #readers = new Set<() => void>();
  #closed = false;

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

  /** Events of one type, in order. */
  ofType<T extends AuditEventType>(type: T): Extract<AuditRecord, { event: T }>[] {
    return this.filter((r) => r.event === type) as Extract<AuditRecord, { event: T }>[];
  }

  /**
   * Resolves with the first event matching `what` — including one that already happened, so a
   * test can wait after the client call returns.
   */
  waitFor(what: AuditEventType | Predicate, opts: { timeout?: number } = {}): Promise<AuditRecord> {
    const match: Predicate = typeof what === 'function' ? what : (r) => r.event === what;
    const found = this.find(match);
    if (found) return Promise.resolve(found);
    const timeout = opts.timeout ?? 5000;
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (r: AuditRecord) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`no ${typeof what === 'string' ? `"${what}" ` : 'matching '}event within ${timeout} ms (saw: ${this.map((r) => r.event).join(', ') || 'none'})`));
      }, timeout);
      this.#waiters.add(w);
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<AuditRecord> {
    let i = 0;
    for (;;) {
      while (i < this.length) yield this[i++]!;
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#readers.delete(wake);
          resolve();
        };
        this.#readers.add(wake);
      });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const r of this.#readers) r();
  }
}
