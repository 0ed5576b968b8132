/**
 * Runs one request from arrival to reply: the policy, exactly one reply in its place in the order,
 * every failure mapped by statusOf() (status.ts), the handles it names held until it ends, and the
 * client paced by what is in flight (pacing.ts).
 */
import type { RequestContext, Handler, RunOptions } from './context.js';
import { ReplyOrder, type Reply } from './reply-order.js';
import { Pacing } from './pacing.js';
import type { Handle } from './handles.js';
import type { RequestName } from './requests.js';
import { changesFiles } from './policy.js';
import { statusOf } from './status.js';
import { ConnectionDrop, SftpStatusError } from '../errors.js';

/** What the session's owner asked to hear (its onActivity and onDrop, read at each call). */
export interface RunnerHooks {
  activity(): void;
  drop(why: string): void;
}

const NO_OPTIONS: RunOptions = Object.freeze({});

export class RequestRunner {
  #inflight = 0;
  #idleWaiters: (() => void)[] = [];
  readonly #c: RequestContext;
  readonly #hooks: RunnerHooks;
  readonly #order: ReplyOrder;
  readonly #pacing: Pacing;

  constructor(c: RequestContext, hooks: RunnerHooks) {
    this.#c = c;
    this.#hooks = hooks;
    this.#order = new ReplyOrder(() => !c.state.closed);
    this.#pacing = new Pacing(c.sftp, c.options.limits, c.state, (why) => hooks.drop(why));
  }

  get inflight(): number {
    return this.#inflight;
  }

  run(request: RequestName, handler: Handler, id: number, fields: unknown[]): void {
    const c = this.#c;
    c.totals.requests++;
    this.#hooks.activity();
    const opts = handler.arrive?.(c, ...fields) ?? NO_OPTIONS;
    // After a change, no READ is answered from content read before it (head-cache.ts).
    if (changesFiles(request, opts)) c.heads.changed();
    const reply = this.#order.slot();
    this.#pacing.started(++this.#inflight);
    const started = c.options.observeRequest ? process.hrtime.bigint() : 0n;
    // #start is async: whatever its handler throws becomes `result`'s rejection, and hold() always runs.
    c.handles.collect();
    const result = this.#start(request, opts, handler, id, fields);
    const held = c.handles.hold();
    result
      .then(reply, (err: unknown) => this.#failed(request, id, err, reply, opts))
      .finally(() => this.#ended(request, started, held));
  }

  /** The client read what was queued for it: requests that waited may be parsed. */
  drained(): void {
    this.#pacing.resume(this.#inflight);
  }

  /** Answers a request that never reaches a handler (an unknown extension, a malformed packet), in order. */
  answer(id: number, code: number, message: string): void {
    this.#c.totals.requests++;
    this.#order.slot()(() => this.#c.sftp.status(id, code, message));
  }

  /** Resolves once no request is in flight, or after `waitMs`. */
  async idle(waitMs: number): Promise<void> {
    if (this.#inflight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((r) => this.#idleWaiters.push(r)),
      new Promise<void>((r) => (timer = setTimeout(r, waitMs))),
    ]);
    clearTimeout(timer);
  }

  async #start(request: RequestName, opts: RunOptions, handler: Handler, id: number, fields: unknown[]): Promise<Reply> {
    const c = this.#c;
    if (c.state.closed) throw new SftpStatusError('CONNECTION_LOST', undefined, 'session closed');
    c.options.policy.check(request, opts.writes ? { writes: true } : {});
    return handler.serve(c, id, ...fields);
  }

  #failed(request: RequestName, id: number, err: unknown, reply: (r: Reply) => void, opts: RunOptions): void {
    opts.onError?.(err);
    if (err instanceof ConnectionDrop) {
      reply(() => undefined);
      return this.#hooks.drop(err.message);
    }
    const st = statusOf(err);
    if (st.name !== 'EOF') this.#c.totals.errors++;
    if (err instanceof SftpStatusError && st.name === 'PERMISSION_DENIED' && err.reason)
      this.#c.log.emit({ event: 'request.refused', what: request, why: 'policy', detail: err.reason });
    reply(() => this.#c.sftp.status(id, st.code, st.message));
  }

  #ended(request: RequestName, started: bigint, held: Handle[] | undefined): void {
    const observe = this.#c.options.observeRequest;
    if (observe) observe(request, Number(process.hrtime.bigint() - started) / 1e9);
    this.#c.handles.release(held);
    this.#inflight--;
    this.#pacing.resume(this.#inflight);
    if (this.#inflight === 0) for (const w of this.#idleWaiters.splice(0)) w();
  }
}
