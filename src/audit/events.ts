/**
 * The audit event schema: the single source of every event's shape. Core fields (time, level,
 * server) are added by the sink; everything else is here. Coded words (reasons, warning codes)
 * are in ./codes.ts.
 */
import type { AuthFailureReason, CloseReason, HookRefusedReason, RefusalReason, TransferError, WarningCode } from './codes.js';

export interface Core {
  user?: string;
  sessionId?: string;
  /** Client address as ip:port. */
  remote: string;
}

export type AuthMethod = 'none' | 'password' | 'publickey' | 'keyboard-interactive' | 'hostbased';

export interface AuthSuccess extends Core {
  event: 'auth.success';
  method: AuthMethod;
  keyType?: string;
  keyFingerprint?: string;
}
export interface AuthFailure extends Core {
  event: 'auth.failure';
  method: AuthMethod;
  reason: AuthFailureReason;
  /** The user name the client offered (escaped by the sink). */
  user: string;
  attempt: number;
  /** A public-key query that was declined (not a failed login). */
  probe?: boolean;
}
export interface SessionOpen extends Core {
  event: 'session.open';
  client: string;
  /** The key exchange negotiated (e.g. mlkem768x25519-sha256: post-quantum). */
  kex?: string;
  cipher?: string;
}
export interface SessionTotals {
  filesUp: number;
  filesDown: number;
  bytesIn: number;
  bytesOut: number;
  requests: number;
  errors: number;
}
export interface SessionClose extends Core {
  event: 'session.close';
  durationMs: number;
  totals: SessionTotals;
  reason?: CloseReason;
  /** Protocol errors and refusals of this connection beyond its log budget, counted, not written. */
  unlogged?: number;
}
/** A connection that ended without logging in (one that did gets session.close). */
export interface ConnectionClose extends Core {
  event: 'connection.close';
  /** How far it got: 'ident' (no SSH identification), 'key-exchange', 'authentication'. */
  stage: 'ident' | 'key-exchange' | 'authentication';
  /** Why it ended, e.g. "login grace time exceeded", "closed by the client before logging in", or an error. */
  reason: CloseReason;
  durationMs: number;
  /** The client's SSH identification string, when it sent one. */
  client?: string;
  /** Failed authentication attempts on this connection. */
  failedAttempts?: number;
  unlogged?: number;
}
export interface RequestRefused extends Core {
  event: 'request.refused';
  what: string;
  why: RefusalReason;
  detail?: string;
}
export type TransferStatus = 'complete' | 'incomplete' | 'error';
export interface Transfer extends Core {
  event: 'transfer';
  path: string;
  hostPath?: string;
  flags: string;
  direction: 'upload' | 'download' | 'both' | 'none';
  bytesRead: number;
  bytesWritten: number;
  firstOffset: number | null;
  highestOffset: number;
  /** File size when the handle was opened (for resumed transfers). */
  startSize: number;
  requests: number;
  maxRequestBytes: number;
  durationMs: number;
  status: TransferStatus;
  /** An atomic upload: written under a hidden name, published under `path` only when complete. */
  atomic?: boolean;
  sftpStatus?: string;
  message?: string;
  /** Why it failed, when the server refused it on purpose: 'quota' (a write past the user's quota). */
  error?: TransferError;
  sha256?: string;
  sha256Skipped?: string;
}
interface Outcome {
  ok: boolean;
  sftpStatus?: string;
  error?: string;
}
export interface Mkdir extends Core, Outcome { event: 'mkdir'; path: string; mode?: string }
export interface Rmdir extends Core, Outcome { event: 'rmdir'; path: string }
export interface Remove extends Core, Outcome { event: 'remove'; path: string }
export interface Rename extends Core, Outcome { event: 'rename'; from: string; to: string; overwrite: boolean }
export interface Symlink extends Core, Outcome { event: 'symlink'; path: string; target: string }
export interface Link extends Core, Outcome { event: 'link'; from: string; to: string }
export interface Setstat extends Core, Outcome {
  event: 'setstat';
  path: string;
  changes: { mode?: string; size?: number; atime?: number; mtime?: number; uid?: number; gid?: number };
}
export interface Copy extends Core, Outcome { event: 'copy'; from: string; to: string; bytes: number }
/** Records about the server itself (no session), with fields of their own (port, fingerprint, …). */
interface ServerRecord {
  remote?: string;
  message: string;
  [k: string]: unknown;
}
export interface ServerEvent extends ServerRecord {
  /** server.sweep: staging files of atomic uploads an earlier run left, removed at start. */
  event: 'server.start' | 'server.stop' | 'server.reload' | 'server.hostkey' | 'server.sweep';
}
/** A root's start-up quota walk ended: its usage, as counted (src/server/quota.ts). */
export interface QuotaScan extends ServerRecord {
  event: 'quota.scan';
  /** The users with this root (the root's host path is not logged). */
  users: string[];
  bytes: number;
  files: number;
  durationMs: number;
  /** The walk could not run: usage counts only what changed since the start. */
  error?: string;
}
export interface ServerWarning extends ServerRecord {
  event: 'server.warning';
  code: WarningCode;
}
export interface ProtocolError extends Core {
  event: 'protocol.error';
  kind: string;
  message: string;
}

/**
 * Notifications (src/hooks/). `hookEvent` is the hook event (upload, login, …) and `id` the
 * notification's, as receivers see them. A hook record has no session of its own: user, sessionId
 * and remote, when present, are those of the record notified about.
 */
interface HookRecord extends Partial<Core> {
  hook: string;
}
/** A delivery failed and will be retried; logged for attempts 1, 2, 4, 8, … so an outage does not flood the log. */
export interface HookFailed extends HookRecord {
  event: 'hook.failed';
  hookEvent: string;
  id: string;
  attempt: number;
  retryInSeconds: number;
  error: string;
}
/** A notification that could not be stored: it is lost. */
export interface HookRefused extends HookRecord {
  event: 'hook.refused';
  hookEvent: string;
  reason: HookRefusedReason;
  error?: string;
  /** The path the lost record named, so the loss can be made good by hand. */
  path?: string;
}
/** A hook's backlog reached half of maxBacklog, or all of it. */
export interface HookBacklog extends HookRecord {
  event: 'hook.backlog';
  depth: number;
  max: number;
}
export type HookAuditEvent = HookFailed | HookRefused | HookBacklog;

export type AuditEvent =
  | AuthSuccess | AuthFailure | SessionOpen | SessionClose | ConnectionClose | RequestRefused | Transfer
  | Mkdir | Rmdir | Remove | Rename | Symlink | Link | Setstat | Copy | ServerEvent | QuotaScan | ServerWarning | ProtocolError
  | HookAuditEvent;

export type AuditEventType = AuditEvent['event'];

/** An event as written by a sink: core fields added. */
export type AuditRecord = AuditEvent & { time: string; level: string; server: string };

/** Receives events; implementations must never throw or block. */
export interface AuditSink {
  write(record: AuditRecord): void;
  /** Reopen files (SIGUSR1 / logrotate). */
  reopen?(): void;
  /** Flush and close. */
  close?(): Promise<void>;
}

const LEVEL: Partial<Record<AuditEventType, string>> = {
  'server.warning': 'warn',
  'protocol.error': 'warn',
  'hook.failed': 'warn',
  'hook.refused': 'warn',
  'hook.backlog': 'warn',
};

/** Where records go: the Audit itself, or a per-connection filter in front of it. */
export interface AuditEmitter {
  emit(event: AuditEvent): void;
}

/** Fans events out to sinks and stamps core fields. */
export class Audit implements AuditEmitter {
  readonly #sinks: AuditSink[] = [];
  /** `extra` is stamped on every record (e.g. the worker id in a multi-process daemon). */
  constructor(
    readonly serverName: string,
    readonly extra: Readonly<Record<string, string | number>> = {},
  ) {}
  addSink(sink: AuditSink): void {
    this.#sinks.push(sink);
  }
  emit(event: AuditEvent): void {
    const rec = { time: new Date().toISOString(), level: LEVEL[event.event] ?? 'info', server: this.serverName, ...this.extra, ...event } as AuditRecord;
    for (const s of this.#sinks) {
      try {
        s.write(rec);
      } catch {
        // A broken sink must not take the request path down.
      }
    }
  }
  reopen(): void {
    for (const s of this.#sinks) s.reopen?.();
  }
  async close(): Promise<void> {
    await Promise.all(this.#sinks.map((s) => s.close?.()));
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event without the fields a session fills in itself. */
export type SessionEvent = DistributiveOmit<Exclude<AuditEvent, ServerEvent | QuotaScan | ServerWarning | HookAuditEvent>, 'user' | 'sessionId' | 'remote'>;
/** A mutation event before its outcome is known. */
export type PendingMutation = DistributiveOmit<Extract<SessionEvent, { ok: boolean }>, 'ok' | 'sftpStatus' | 'error'>;
