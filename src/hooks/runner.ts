/**
 * One hook at work: notifications are accepted into its spool (durable first), then delivered with
 * at most `concurrency` at once, in the order accepted (a retry waits behind newer ones); a failed
 * delivery is retried after 1 s, doubling up to retryMaxSeconds, until it succeeds — across
 * restarts, since the spool keeps it. Delivery never
 * runs on a client's request path: accept() only queues.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { HookConfig, HookEvent } from './config.js';
import { commandDeliver, httpDeliver, type Deliver } from './deliver.js';
import { Spool, type Notification } from './spool.js';
import type { HookRefusedReason } from '../audit/codes.js';

/** What a runner reports (the sink turns these into audit records and metrics). */
export type HookReport =
  | { kind: 'delivered'; hook: string; id: string; event: string; attempts: number; ageSeconds: number }
  | { kind: 'failed'; hook: string; id: string; event: string; attempt: number; retryInSeconds: number; error: string }
  | ({ kind: 'refused'; hook: string; event: string; reason: HookRefusedReason; error?: string } & Whose)
  | { kind: 'backlog'; hook: string; depth: number; max: number };

/** Whose record a lost notification was (the fields it has of these), for the operator to make good. */
type Whose = Partial<Record<'user' | 'sessionId' | 'remote' | 'path', string>>;

function whose(record: Readonly<Record<string, unknown>>): Whose {
  const out: Whose = {};
  for (const k of ['user', 'sessionId', 'remote', 'path'] as const) if (typeof record[k] === 'string') out[k] = record[k];
  if (out.path === undefined && typeof record['from'] === 'string') out.path = record['from'];
  return out;
}

interface Pending {
  n: Notification;
  attempts: number;
  /** When it may be tried again (ms since the epoch). */
  due: number;
}

export class HookRunner {
  readonly name: string;
  readonly #spool: Spool;
  readonly #deliver: Deliver;
  readonly #concurrency: number;
  readonly #retryMaxMs: number;
  readonly #max: number;
  readonly #report: (r: HookReport) => void;
  readonly #queue: Pending[] = [];
  #running = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Backlog level last warned about (warnings at half and full). */
  #warned = 0;
  failures = 0;

  /** The first retry's delay; it doubles per attempt up to retryMaxSeconds (tests shorten it). */
  readonly #retryBaseMs: number;

  /** `folder`: the spool folder, default `spoolDir/<hook name>` (a worker has its own: hooks/layout.ts). */
  constructor(h: HookConfig, spoolDir: string, report: (r: HookReport) => void, deliver?: Deliver, retryBaseMs = 1000, folder = join(spoolDir, h.name)) {
    this.#retryBaseMs = retryBaseMs;
    this.name = h.name;
    this.#spool = new Spool(folder, h.maxBacklog);
    this.#deliver = deliver ?? (h.http ? httpDeliver(h.http, h.name) : commandDeliver(h.command!, h.name));
    this.#concurrency = h.http?.concurrency ?? h.command?.concurrency ?? 1;
    this.#retryMaxMs = h.retryMaxSeconds * 1000;
    this.#max = h.maxBacklog;
    this.#report = report;
  }

  get depth(): number {
    return this.#spool.depth;
  }
  oldestAgeSeconds(): number {
    return this.#spool.oldestAgeSeconds();
  }

  /** Loads what an earlier run accepted and did not deliver, and starts delivering it. */
  async start(): Promise<void> {
    for (const n of await this.#spool.open()) this.#queue.push({ n, attempts: 0, due: 0 });
    this.#pump();
  }

  /** Accepts a notification: stored durably, then queued. Never throws. */
  async accept(event: HookEvent, record: Readonly<Record<string, unknown>>): Promise<void> {
    const n: Notification = { id: randomUUID(), event, acceptedAt: Date.now(), record };
    let stored: boolean;
    try {
      stored = await this.#spool.add(n);
    } catch (e) {
      this.#report({ kind: 'refused', hook: this.name, event, reason: 'spool-error', error: (e as NodeJS.ErrnoException).code ?? String(e), ...whose(record) });
      return;
    }
    if (!stored) return this.#report({ kind: 'refused', hook: this.name, event, reason: 'backlog-full', ...whose(record) });
    this.#warnBacklog();
    this.#queue.push({ n, attempts: 0, due: 0 });
    this.#pump();
  }

  #warnBacklog(): void {
    const level = this.depth >= this.#max ? 2 : this.depth >= this.#max / 2 ? 1 : 0;
    if (level > this.#warned) this.#report({ kind: 'backlog', hook: this.name, depth: this.depth, max: this.#max });
    this.#warned = level;
  }

  /** Starts what is due, up to the concurrency; wakes up for the next retry. */
  #pump(): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    const now = Date.now();
    for (let i = 0; i < this.#queue.length && this.#running < this.#concurrency; ) {
      const p = this.#queue[i]!;
      if (p.due > now) {
        i++;
        continue;
      }
      this.#queue.splice(i, 1);
      this.#attempt(p);
    }
    let next = Infinity;
    for (const p of this.#queue) next = Math.min(next, p.due);
    if (Number.isFinite(next) && this.#running < this.#concurrency) {
      this.#timer = setTimeout(() => this.#pump(), Math.max(0, next - now));
      this.#timer.unref();
    }
  }

  #attempt(p: Pending): void {
    this.#running++;
    p.attempts++;
    this.#deliver(p.n).then(
      async () => {
        await this.#spool.remove(p.n.id);
        this.#warnBacklog();
        this.#report({ kind: 'delivered', hook: this.name, id: p.n.id, event: p.n.event, attempts: p.attempts, ageSeconds: (Date.now() - p.n.acceptedAt) / 1000 });
      },
      (e: unknown) => {
        this.failures++;
        const delay = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** Math.min(p.attempts - 1, 20));
        p.due = Date.now() + delay;
        this.#queue.push(p);
        this.#report({ kind: 'failed', hook: this.name, id: p.n.id, event: p.n.event, attempt: p.attempts, retryInSeconds: delay / 1000, error: e instanceof Error ? e.message : String(e) });
      },
    ).finally(() => {
      this.#running--;
      this.#pump();
    });
  }

  /** Stops delivering; what was not delivered stays in the spool for the next start. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
