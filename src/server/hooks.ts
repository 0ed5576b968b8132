/**
 * The hooks of a running server: a HooksSink (src/hooks/) for the config's `hooks`, fed every audit
 * record; its reports become hook.* records and metrics. A reload that changes `hooks` replaces the
 * sink: the old one is closed (it waits for the notifications being stored), then the new one opens
 * the same spool and resumes what is undelivered, so nothing is lost; records that arrive meanwhile
 * wait in memory. A reload that leaves `hooks` as they were keeps the sink (deliveries and their
 * back-off go on) and only refreshes the users' groups. spoolDir is the one read at start.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Audit, AuditRecord, AuditSink } from '../audit/events.js';
import type { Metrics } from '../admin/metrics.js';
import type { ServerConfig } from '../config/load.js';
import type { HookConfig } from '../hooks/config.js';
import type { Deliver } from '../hooks/deliver.js';
import { gatherBacklogs } from '../hooks/layout.js';
import type { HookReport } from '../hooks/runner.js';
import { HooksSink } from '../hooks/sink.js';

export interface ServerHooksOptions {
  audit: Audit;
  metrics: Metrics | undefined;
  /** The worker slot with "workers" > 1 (the primary gathered the backlogs before forking). */
  worker?: number | undefined;
  /** Tests replace the deliverer and shorten the first retry. */
  deliver?: (hook: HookConfig) => Deliver | undefined;
  retryBaseMs?: number;
}

/** 1, 2, 4, 8, …: the attempts whose failure is logged. */
const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;

export class ServerHooks implements AuditSink {
  readonly #o: ServerHooksOptions;
  readonly #spoolDir: string;
  #hooks: readonly HookConfig[] = [];
  #groups = new Map<string, string>();
  #sink: HooksSink | undefined;
  /** Records that arrive while no sink takes them (before start, during a swap). */
  #held: AuditRecord[] | undefined = [];
  /** Reloads run one after another. */
  #turn: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(config: ServerConfig, o: ServerHooksOptions) {
    this.#o = o;
    this.#spoolDir = config.spoolDir;
  }

  /** Opens the spools and resumes an earlier run's backlog; the server listens only after this. */
  async start(config: ServerConfig): Promise<void> {
    this.#groups = groupsOf(config);
    await this.#open(config.hooks);
  }

  write(r: AuditRecord): void {
    if (this.#closed) return;
    if (this.#held) this.#held.push(r);
    else this.#sink?.write(r);
  }

  reload(next: ServerConfig): Promise<void> {
    const run = async () => {
      this.#groups = groupsOf(next);
      if (this.#closed || isDeepStrictEqual(next.hooks, this.#hooks)) return;
      const old = this.#hooks;
      this.#held ??= [];
      await this.#sink?.close();
      this.#sink = undefined;
      try {
        await this.#open(next.hooks);
      } catch (e) {
        // The previous hooks go on and the reload reports the failure; if even they cannot, the
        // held records are let go rather than kept in memory for ever.
        await this.#open(old).catch(() => (this.#held = undefined));
        throw e;
      }
    };
    const turn = this.#turn.then(run);
    this.#turn = turn.catch(() => undefined);
    return turn;
  }

  /** After the last session's records: waits until every accepted notification is stored. */
  async close(): Promise<void> {
    await this.#turn;
    this.#closed = true;
    this.#held = undefined;
    await this.#sink?.close();
  }

  async #open(hooks: readonly HookConfig[]): Promise<void> {
    this.#hooks = hooks;
    if (hooks.length > 0) {
      const names = hooks.map((h) => h.name);
      if (this.#o.worker === undefined) await gatherBacklogs(this.#spoolDir, names, 1);
      const sink = new HooksSink({
        hooks,
        spoolDir: this.#spoolDir,
        worker: this.#o.worker,
        groupOf: (user) => this.#groups.get(user),
        report: (r) => this.#report(r),
        ...(this.#o.deliver ? { deliver: this.#o.deliver } : {}),
        ...(this.#o.retryBaseMs !== undefined ? { retryBaseMs: this.#o.retryBaseMs } : {}),
      });
      // A half-started sink (one spool opened, the next refused) must not deliver beside the next one.
      await sink.start().catch(async (e: unknown) => {
        await sink.close();
        throw e;
      });
      this.#sink = sink;
    }
    this.#o.metrics?.watchHooks(() => this.#sink?.runners ?? []);
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const r of held) this.#sink?.write(r);
  }

  #report(r: HookReport): void {
    const { audit, metrics } = this.#o;
    switch (r.kind) {
      case 'delivered':
        metrics?.countHook(r.hook, 'delivered');
        return;
      case 'failed':
        metrics?.countHook(r.hook, 'failed');
        if (isPowerOfTwo(r.attempt)) audit.emit({ event: 'hook.failed', hook: r.hook, hookEvent: r.event, id: r.id, attempt: r.attempt, retryInSeconds: r.retryInSeconds, error: r.error });
        return;
      case 'refused': {
        metrics?.countHook(r.hook, 'refused');
        const { kind: _k, event, ...rest } = r;
        audit.emit({ event: 'hook.refused', hookEvent: event, ...rest });
        return;
      }
      case 'backlog':
        audit.emit({ event: 'hook.backlog', hook: r.hook, depth: r.depth, max: r.max });
    }
  }
}

function groupsOf(config: ServerConfig): Map<string, string> {
  return new Map(config.users.flatMap((u) => (u.group === undefined ? [] : [[u.username, u.group] as const])));
}
