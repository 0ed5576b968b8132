/** The session's audit records: each carries the user, session and remote address. */
import { posix } from 'node:path';
import type { AuditEmitter, AuditEvent, PendingMutation, SessionEvent, SessionTotals } from '../audit/events.js';
import type { TransferStats } from './transfer.js';
import { statusOf } from './status.js';

export interface SessionLogOptions {
  readonly audit: AuditEmitter;
  readonly user: string;
  readonly sessionId: string;
  readonly remote: string;
  /** When set (log.hostPaths), transfer records also carry the host path under this root. */
  readonly hostRoot?: string | undefined;
}

export class SessionLog {
  readonly #o: SessionLogOptions;
  readonly #totals: SessionTotals;

  constructor(o: SessionLogOptions, totals: SessionTotals) {
    this.#o = o;
    this.#totals = totals;
  }

  emit(e: SessionEvent): void {
    this.#o.audit.emit({ ...e, user: this.#o.user, sessionId: this.#o.sessionId, remote: this.#o.remote } as AuditEvent);
  }

  /** Waits for `p` and records the mutation `e` with its outcome; a failure still rejects. */
  mutation(e: PendingMutation, p: Promise<void>): Promise<void> {
    return p.then(
      () => this.emit({ ...e, ok: true } as SessionEvent),
      (err: unknown) => {
        const st = statusOf(err);
        this.emit({ ...e, ok: false, sftpStatus: st.name, error: st.cause } as SessionEvent);
        throw err;
      },
    );
  }

  /** A file handle was closed: its `transfer` record, and the session's file counts. */
  transfer(stats: TransferStats, status: 'complete' | 'incomplete'): void {
    const rec = stats.record(status);
    if (this.#o.hostRoot !== undefined) rec.hostPath = posix.join(this.#o.hostRoot, posix.normalize('/' + rec.path));
    if (rec.bytesWritten > 0 || (rec.direction === 'upload' && rec.status === 'complete')) this.#totals.filesUp++;
    if (rec.bytesRead > 0) this.#totals.filesDown++;
    this.emit(rec);
  }
}
