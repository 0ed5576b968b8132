/**
 * One SFTP session: builds its parts and wires ssh2's events to them. Requests are described in
 * requests.ts, dispatched by dispatch.ts, run by runner.ts and served by handlers/ and extensions/;
 * replies leave in order (reply-order.ts), handles live in handles.ts, READs are budgeted by
 * read-budget.ts. When the session ends, handles still open are closed and logged as
 * `incomplete` transfers.
 */
import type { SFTPWrapper } from 'ssh2';
import type { SessionTotals } from '../audit/events.js';
import { symlinkOrderFor } from './symlink-order.js';
import { HandleTable } from './handles.js';
import { HeadCache } from './head-cache.js';
import { ReadBudget } from './read-budget.js';
import { RequestRunner } from './runner.js';
import { SessionLog } from './session-log.js';
import { Throttle, UNLIMITED } from './throttle.js';
import { HANDLERS, bind } from './dispatch.js';
import { resolvePath } from './virtual-path.js';
import { discard } from './staged-upload.js';
import type { RequestContext, SessionOptions, SessionState } from './context.js';
import { STATUS } from '../errors.js';
import { STATUS_MESSAGES } from './status.js';

export type { SessionLimits, SessionOptions } from './context.js';

export class SftpSession {
  readonly #sftp: SFTPWrapper;
  readonly #opened = Date.now();
  readonly #state: SessionState = { ending: false, closed: false };
  readonly #c: RequestContext;
  readonly #runner: RequestRunner;
  readonly totals: SessionTotals = { filesUp: 0, filesDown: 0, bytesIn: 0, bytesOut: 0, requests: 0, errors: 0 };
  /** Fires on every request (idle timers). */
  onActivity: () => void = () => {};
  /** Ends the client's connection at once (a ConnectionDrop from the filesystem seam). */
  onDrop: (why: string) => void = () => {};

  constructor(sftp: SFTPWrapper, opts: SessionOptions) {
    this.#sftp = sftp;
    this.#c = this.#context(sftp, opts);
    this.#runner = new RequestRunner(this.#c, { activity: () => this.onActivity(), drop: (why) => this.onDrop(why) });
    this.#wire(sftp);
  }

  #context(sftp: SFTPWrapper, o: SessionOptions): RequestContext {
    return {
      sftp,
      fs: o.fs,
      options: o,
      state: this.#state,
      totals: this.totals,
      handles: new HandleTable(o.limits.maxHandles),
      heads: new HeadCache(),
      reads: new ReadBudget(sftp, o.limits.maxInflightBytes, this.#state),
      log: new SessionLog(o, this.totals),
      symlinkOrder: symlinkOrderFor(o.clientIdent),
      throttle: new Throttle(o.bandwidth ?? UNLIMITED),
      path: (raw) => resolvePath(raw, o.startDirectory),
    };
  }

  #wire(sftp: SFTPWrapper): void {
    const { reads, log } = this.#c;
    sftp.onPayloadSent = (payload) => reads.sent(payload);
    // Paths arrive as the client's bytes (names.ts), not decoded by ssh2.
    sftp.namesAsBuffers = true;
    // The client read what was queued for it: parked READs may go on.
    sftp.on('drain', () => {
      reads.grant();
      this.#runner.drained();
    });
    // Answers to malformed or unknown packets take their place in the reply order too.
    sftp.answerProtocolError = (id, code, message) => this.#runner.answer(id, code, message);
    bind(sftp, (request, id, fields) => this.#runner.run(request, HANDLERS[request], id, fields), (id, name) => {
      log.emit({ event: 'request.refused', what: `extended:${name.slice(0, 100)}`, why: 'unsupported' });
      this.#runner.answer(id, STATUS.OP_UNSUPPORTED, STATUS_MESSAGES.OP_UNSUPPORTED);
    });
  }

  get inflight(): number {
    return this.#runner.inflight;
  }
  get openHandles(): number {
    return this.#c.handles.size;
  }
  /** Reply bytes ssh2 holds until the client opens its window (0 when all were handed to the socket). */
  get unsentBytes(): number {
    return this.#sftp.outgoingBytes?.() ?? 0;
  }
  get durationMs(): number {
    return Date.now() - this.#opened;
  }

  /** Waits (bounded) for in-flight requests, then closes every handle; open files become `incomplete`. */
  async close(waitMs = 2000): Promise<void> {
    if (this.#state.closed || this.#state.ending) return;
    // READs parked for backpressure will never be read by anyone: let them fail at once.
    this.#state.ending = true;
    this.#c.reads.grant();
    // Requests waiting for bandwidth go on, so none is left waiting.
    this.#c.throttle.end();
    await this.#runner.idle(waitMs);
    this.#state.closed = true;
    const { handles, log } = this.#c;
    await Promise.all(
      handles.takeAll().map(async (h) => {
        if (h.kind === 'dir') return h.dir.close().catch(() => undefined);
        await h.file.close().catch(() => undefined);
        // A cut atomic upload leaves the final name as it was.
        if (h.staged) await discard(this.#c.fs, h.staged);
        log.transfer(h.stats, 'incomplete');
      }),
    );
  }
}
