/**
 * Hooks as an audit sink: every record that is a hook event (an upload, a remove, a login, …) and
 * that a hook wants is handed to that hook's runner, which stores it durably and delivers it.
 * write() only queues: no hook ever delays a client's request.
 */
import type { AuditRecord, AuditSink } from '../audit/events.js';
import type { HookConfig } from './config.js';
import { hookEventOf, hookFilter, type HookFilter } from './match.js';
import { HookRunner, type HookReport } from './runner.js';
import type { Deliver } from './deliver.js';
import { spoolFolder } from './layout.js';

export interface HooksOptions {
  hooks: readonly HookConfig[];
  spoolDir: string;
  /** The worker slot (1..N) with "workers" > 1: this process's own spool folders (hooks/layout.ts). */
  worker?: number | undefined;
  /** A user's group in the running config (for `groups` filters). */
  groupOf: (user: string) => string | undefined;
  report: (r: HookReport) => void;
  /** Tests replace the deliverer and shorten the first retry. */
  deliver?: (hook: HookConfig) => Deliver | undefined;
  retryBaseMs?: number;
}

export class HooksSink implements AuditSink {
  readonly runners: readonly HookRunner[];
  readonly #filters: readonly HookFilter[];
  /** Notifications being stored: close() waits for them (an accepted one is never lost on SIGTERM). */
  readonly #storing = new Set<Promise<void>>();

  constructor(o: HooksOptions) {
    this.runners = o.hooks.map((h) => new HookRunner(h, o.spoolDir, o.report, o.deliver?.(h), o.retryBaseMs, spoolFolder(o.spoolDir, h.name, o.worker)));
    this.#filters = o.hooks.map((h) => hookFilter(h, o.groupOf));
  }

  /** Opens every spool and resumes what an earlier run did not deliver. */
  async start(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.start()));
  }

  #closed = false;

  write(r: AuditRecord): void {
    if (this.#closed) return;
    const event = hookEventOf(r);
    if (event === undefined) return;
    this.runners.forEach((runner, i) => {
      if (!this.#filters[i]!.wants(r, event)) return;
      const p = runner.accept(event, r as unknown as Readonly<Record<string, unknown>>).finally(() => this.#storing.delete(p));
      this.#storing.add(p);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#storing]);
    for (const r of this.runners) r.close();
  }
}
