/**
 * One SSH connection: authentication, limits, refusals, and the SFTP sessions it opens.
 * Every emitter gets an error listener: one client's bad bytes end only that client.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { AuthContext, Connection, ClientInfo, KeyboardAuthContext, PublicKeyAuthContext, SFTPWrapper } from 'ssh2';
import type { Audit, AuditEmitter, AuthFailure, AuthMethod, SessionTotals } from '../audit/events.js';
import { dropReason, type AuthFailureReason, type CloseReason } from '../audit/codes.js';
import { formatRemote } from '../audit/escape.js';
import { LogBudget } from '../audit/log-budget.js';
import type { ServerConfig, UserRecord } from '../config/load.js';
import type { AuthResult, Authenticator } from './auth.js';
import { accountRefusal } from './account.js';
import type { Admission } from './admission.js';
import { packetsHeldForRekey, sendExitStatus, transientInputOf } from './ssh2.js';
import { refuseConnectionRequests, refuseSessionRequests } from './policy.js';
import { SftpSession } from '../sftp/session.js';
import { SERVER_EXTENSIONS } from '../sftp/requests.js';
import { Policy } from '../sftp/policy.js';
import type { FileSystem } from '../fs/file-system.js';
import type { BandwidthLimits } from '../sftp/throttle.js';
import { paceClientWindow, readIntoSharedBuffer } from './socket-tuning.js';

/** Protocol errors and refusals one connection may log at once, then per second (see LogBudget). */
const WARNINGS_BURST = 200;
const WARNINGS_PER_SECOND = 20;

export const AUTH_METHODS = ['publickey', 'password', 'keyboard-interactive'] as const;

export type ConnectionLimits = Pick<
  ServerConfig['limits'],
  'loginGraceSeconds' | 'maxAuthTries' | 'idleTimeoutSeconds' | 'maxSessionsPerConnection' | 'maxHandlesPerSession' | 'maxRequestsInFlight' | 'maxInflightBytesPerSession'
>;

/** What a connection asks of admission (src/ssh/admission.ts) while logging in and ending. */
export type LoginAdmission = Pick<Admission, 'sourceAllowed' | 'admitSession' | 'shareSession' | 'releaseSession' | 'authFailed' | 'authSucceeded' | 'draining'>;

/** What a connection needs from the server around it (all per server instance, nothing global). */
export interface ConnectionEnv {
  audit: Audit;
  auth(): Authenticator;
  limits(): ConnectionLimits;
  hashUploads(): boolean;
  /** Request latency for metrics (undefined when metrics are off). */
  observeRequest: ((request: string, seconds: number) => void) | undefined;
  /** log.hostPaths: add host paths to transfer records. */
  hostPaths(): boolean;
  /** The FileSystem for a user's root (shared by that user's sessions). */
  fileSystem(user: UserRecord): FileSystem;
  /** The bandwidth limits a user's sessions share (absent: unlimited). */
  bandwidth?: ((username: string) => BandwidthLimits) | undefined;
  /** Penalties, allowFrom and session counts; `draining` is set on shutdown: finish, then end. */
  admission: LoginAdmission;
}

/** A DISCONNECT message: reason code (RFC 4253 §11.1) and the text the client prints. */
export interface Disconnect {
  code: number;
  text: string;
}
export const DISCONNECT = {
  /** sshd's words (and code) when the tries run out. */
  tooManyFailures: { code: 2, text: 'Too many authentication failures' },
  byApplication: (text: string): Disconnect => ({ code: 11, text }),
} as const;

/** keyboard-interactive as sshd with PAM asks: one hidden "Password: " prompt, no title; null if the client gave up. */
function askPassword(ctx: KeyboardAuthContext): Promise<string[] | null> {
  return new Promise<string[] | null>((resolve) => {
    ctx.prompt([{ prompt: 'Password: ', echo: false }], '', '', (responses) => resolve(responses));
    ctx.once?.('abort', () => resolve(null));
  });
}

export class ClientConnection {
  readonly sessionId = randomBytes(6).toString('hex');
  readonly remote: string;
  readonly ip: string;
  readonly opened = Date.now();
  readonly sessions = new Set<SftpSession>();
  user: UserRecord | undefined;
  #attempts = 0;
  #grace: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  #expiry: NodeJS.Timeout | undefined;
  #channels = 0;
  #ended = false;
  #cipher: string | undefined;
  #closeReason: CloseReason | undefined;
  /** The key exchange agreed (undefined until the first one completes: how far a failed connection got). */
  #kex: string | undefined;
  /** The user name last offered, for the record of a connection that never logged in. */
  #triedUser: string | undefined;
  #endTimer: NodeJS.Timeout | undefined;
  readonly #ending = new Map<SftpSession, Promise<void>>();
  readonly #totals: SessionTotals = { filesUp: 0, filesDown: 0, bytesIn: 0, bytesOut: 0, requests: 0, errors: 0 };
  #closed: Promise<void>;
  #resolveClosed!: () => void;
  readonly #budget = new LogBudget(WARNINGS_BURST, WARNINGS_PER_SECOND);
  /** This connection's records: protocol errors and refusals pass through its log budget. */
  readonly #log: AuditEmitter = {
    emit: (e) => {
      if ((e.event !== 'protocol.error' && e.event !== 'request.refused') || this.#budget.take()) return this.env.audit.emit(e);
      if (this.#budget.suppressed === 1)
        this.env.audit.emit({
          event: 'protocol.error',
          remote: this.remote,
          sessionId: this.sessionId,
          ...(this.user ? { user: this.user.username } : {}),
          kind: 'log-limit',
          message: `more than ${WARNINGS_BURST} protocol errors and refusals: from now on at most ${WARNINGS_PER_SECOND} a second are logged, the rest counted in session.close (unlogged)`,
        });
    },
  };

  constructor(
    readonly client: Connection,
    readonly info: ClientInfo,
    readonly socket: Socket | undefined,
    readonly env: ConnectionEnv,
  ) {
    this.ip = info.ip ?? 'unknown';
    this.remote = formatRemote(info.ip, info.port);
    this.#closed = new Promise((r) => (this.#resolveClosed = r));
    this.#wire();
  }

  get closed(): Promise<void> {
    return this.#closed;
  }

  get clientIdent(): string {
    return this.info.header?.identRaw ?? '';
  }

  #refuse = (what: string, detail?: string) => {
    this.#log.emit({
      event: 'request.refused',
      remote: this.remote,
      sessionId: this.sessionId,
      ...(this.user ? { user: this.user.username } : {}),
      what,
      why: 'only sftp is allowed',
      ...(detail !== undefined ? { detail } : {}),
    });
  };

  #wire(): void {
    const c = this.client;
    const limits = this.env.limits();
    c.on('error', (err: Error & { level?: string }) => {
      // Protocol errors end this connection only; note them for the operator.
      this.#closeReason ??= `error: ${err.message.slice(0, 200)}`;
      this.#log.emit({ event: 'protocol.error', remote: this.remote, sessionId: this.sessionId, ...(this.user ? { user: this.user.username } : {}), kind: err.level ?? 'connection', message: err.message.slice(0, 300) });
    });
    c.on('handshake', (n) => {
      this.#cipher = n.cs.cipher;
      this.#kex ??= n.kex;
    });
    this.#grace = setTimeout(() => {
      this.#log.emit({ event: 'request.refused', remote: this.remote, sessionId: this.sessionId, what: 'login', why: 'login-grace-exceeded', detail: `not authenticated within ${limits.loginGraceSeconds}s` });
      this.end('login grace time exceeded', DISCONNECT.byApplication('Timeout before authentication'));
    }, limits.loginGraceSeconds * 1000);
    this.#grace.unref();

    c.on('authentication', (ctx) => {
      this.#authenticate(ctx).catch(() => {
        try {
          ctx.reject([...AUTH_METHODS]);
        } catch {
          /* connection gone */
        }
      });
    });
    c.on('ready', () => this.#ready());
    c.on('close', () => this.#onClose());
    c.on('end', () => undefined);
    refuseConnectionRequests(c, this.#refuse);
  }

  async #authenticate(ctx: AuthContext): Promise<void> {
    this.#triedUser = ctx.username;
    const auth = this.env.auth();
    switch (ctx.method) {
      case 'none':
        // OpenSSH probes with "none" first; not an attempt.
        return ctx.reject([...AUTH_METHODS]);
      case 'password':
        return this.#decide(ctx, auth, await auth.password(ctx.username, ctx.password));
      case 'keyboard-interactive': {
        const answers = await askPassword(ctx);
        if (!answers) return;
        return this.#decide(ctx, auth, await auth.password(ctx.username, answers[0] ?? ''));
      }
      case 'publickey':
        return this.#publickey(ctx, auth);
      default:
        return this.#fail(ctx, 'method-not-allowed', false);
    }
  }

  #publickey(ctx: PublicKeyAuthContext, auth: Authenticator): void {
    const r = auth.publickey(ctx.username, { algo: ctx.key.algo, data: ctx.key.data, signature: ctx.signature, blob: ctx.blob, hashAlgo: ctx.hashAlgo });
    if (ctx.signature === undefined) {
      // The "would you accept this key?" query: answer without counting an attempt.
      if (r.ok) return ctx.accept();
      this.env.audit.emit({ ...this.#failure(ctx, r.reason), probe: true });
      return ctx.reject([...AUTH_METHODS]);
    }
    this.#decide(ctx, auth, r, r.ok && r.key ? { keyType: r.key.type, keyFingerprint: r.key.fingerprint } : {});
  }

  /** A checked credential: the user is looked up after the check, which may have taken a while. */
  #decide(ctx: AuthContext, auth: Authenticator, r: AuthResult, key: { keyType?: string; keyFingerprint?: string } = {}): void {
    const user = auth.user(ctx.username);
    if (r.ok && user) return void this.#succeed(ctx, user, key).catch(() => this.end());
    this.#fail(ctx, r.ok ? 'unknown-user' : r.reason);
  }

  #failure(ctx: AuthContext, reason: AuthFailureReason): AuthFailure {
    return { event: 'auth.failure', remote: this.remote, sessionId: this.sessionId, user: ctx.username, method: ctx.method as AuthMethod, reason, attempt: this.#attempts };
  }

  #fail(ctx: AuthContext, reason: AuthFailureReason, counted = true): void {
    const { audit, admission } = this.env;
    if (counted) this.#attempts++;
    audit.emit(this.#failure(ctx, reason));
    const penalty = counted ? admission.authFailed(this.ip) : 0;
    if (penalty > 0) {
      audit.emit({ event: 'request.refused', remote: this.remote, sessionId: this.sessionId, user: ctx.username, what: 'login', why: 'penalty', detail: `${this.#attempts} failed logins; ${this.ip} refused for ${penalty}s` });
      ctx.reject([...AUTH_METHODS]);
      return this.end('penalty', DISCONNECT.tooManyFailures);
    }
    if (this.#attempts >= this.env.limits().maxAuthTries) {
      audit.emit(this.#failure(ctx, 'too-many-attempts'));
      // Disconnect instead of answering, as sshd does: the client cannot try a seventh time.
      return this.end('too many authentication failures', DISCONNECT.tooManyFailures);
    }
    ctx.reject([...AUTH_METHODS]);
  }

  /** Good credentials: the login still needs an allowed source address and a free session. */
  async #succeed(ctx: AuthContext, user: UserRecord, key: { keyType?: string; keyFingerprint?: string }): Promise<void> {
    const { audit, admission } = this.env;
    const closed = accountRefusal(user);
    if (closed) return this.#fail(ctx, closed);
    if (!admission.sourceAllowed(user, this.ip)) return this.#fail(ctx, 'source-not-allowed');
    let refusal = admission.admitSession(user);
    if (!refusal) {
      refusal = await admission.shareSession(user, this.sessionId);
      // The client left while the other instances were asked: the session it got is given back.
      if (this.#ended) return refusal ? undefined : admission.releaseSession(user, this.sessionId);
    }
    if (refusal) {
      audit.emit({ event: 'request.refused', remote: this.remote, sessionId: this.sessionId, user: user.username, what: 'login', why: refusal });
      ctx.reject([...AUTH_METHODS]);
      return this.end(refusal, DISCONNECT.byApplication(refusal === 'too-many-sessions' ? 'Too many sessions for this user' : 'Server shutting down'));
    }
    this.user = user;
    admission.authSucceeded(this.ip, this.socket);
    audit.emit({ event: 'auth.success', remote: this.remote, sessionId: this.sessionId, user: user.username, method: ctx.method as AuthMethod, ...key });
    ctx.accept();
  }

  #touch = () => {
    this.#idle?.refresh();
  };

  #ready(): void {
    clearTimeout(this.#grace);
    const user = this.user;
    if (!user) return this.end();
    const limits = this.env.limits();
    this.env.audit.emit({ event: 'session.open', remote: this.remote, sessionId: this.sessionId, user: user.username, client: this.clientIdent.slice(0, 200), ...(this.#kex ? { kex: this.#kex } : {}), ...(this.#cipher ? { cipher: this.#cipher } : {}) });
    if (limits.idleTimeoutSeconds > 0) this.#startIdleTimer(user, limits.idleTimeoutSeconds);
    this.checkAccount();
    this.client.on('session', (accept, reject) => {
      this.#touch();
      if (this.env.admission.draining) {
        this.#refuse('session', 'server shutting down');
        return reject();
      }
      if (this.#channels >= limits.maxSessionsPerConnection) {
        this.#log.emit({ event: 'request.refused', remote: this.remote, sessionId: this.sessionId, user: user.username, what: 'session', why: 'too-many-sessions', detail: `more than ${limits.maxSessionsPerConnection} sessions on one connection` });
        return reject();
      }
      this.#channels++;
      const session = accept();
      session.on('close', () => this.#channels--);
      refuseSessionRequests(session, this.#refuse);
      session.on('sftp', (acceptSftp) => this.#startSftp(acceptSftp(), user));
    });
  }

  /**
   * Ends a logged-in connection whose account is now disabled or expired, by the current config
   * (reload calls this); otherwise waits for its expiresAt. A user removed from the config keeps
   * the sessions it has, as every other setting does.
   */
  checkAccount(): void {
    clearTimeout(this.#expiry);
    const current = this.user && this.env.auth().user(this.user.username);
    if (!current) return;
    const refusal = accountRefusal(current);
    if (refusal === 'account-disabled') return this.end('account disabled', DISCONNECT.byApplication('Account disabled'));
    if (refusal === 'account-expired') return this.end('account expired', DISCONNECT.byApplication('Account expired'));
    if (current.expiresAt === undefined) return;
    // Timers hold at most 2^31-1 ms (24.8 days): a later expiry is looked at again then.
    this.#expiry = setTimeout(() => this.checkAccount(), Math.min(current.expiresAt - Date.now() + 1, 0x7fffffff));
    this.#expiry.unref();
  }

  #startIdleTimer(user: UserRecord, seconds: number): void {
    this.#idle = setTimeout(() => {
      this.#log.emit({ event: 'request.refused', remote: this.remote, sessionId: this.sessionId, user: user.username, what: 'session', why: 'idle-timeout', detail: `idle for ${seconds}s` });
      this.end('idle timeout', DISCONNECT.byApplication('Idle timeout'));
    }, seconds * 1000);
    this.#idle.unref();
  }

  #startSftp(sftp: SFTPWrapper, user: UserRecord): void {
    if (this.socket) {
      // Authenticated and transferring from now on: no fresh buffer per socket read.
      readIntoSharedBuffer(this.socket, transientInputOf(this.client));
      paceClientWindow(sftp, this.socket, this.clientIdent);
    }
    // Set synchronously after accept(), before INIT is processed, so VERSION lists them.
    sftp.serverExtensions = SERVER_EXTENSIONS;
    const limits = this.env.limits();
    const session = new SftpSession(sftp, {
      user: user.username,
      sessionId: this.sessionId,
      remote: this.remote,
      clientIdent: this.clientIdent,
      fs: this.env.fileSystem(user),
      policy: new Policy(user),
      audit: this.#log,
      limits: { maxHandles: limits.maxHandlesPerSession, maxRequestsInFlight: limits.maxRequestsInFlight, maxInflightBytes: limits.maxInflightBytesPerSession },
      startDirectory: user.startDirectory,
      umask: user.umask,
      atomicUploads: user.atomicUploads,
      hashUploads: this.env.hashUploads(),
      bandwidth: this.env.bandwidth?.(user.username),
      hostRoot: this.env.hostPaths() ? user.root : undefined,
      observeRequest: this.env.observeRequest,
      ownerName: user.username,
      groupName: user.group ?? user.username,
    });
    this.#track(session, sftp, user);
  }

  /** Wires a started session to this connection: activity, drops, errors, the channel's end. */
  #track(session: SftpSession, sftp: SFTPWrapper, user: UserRecord): void {
    session.onActivity = this.#touch;
    session.onDrop = (why) => {
      this.#closeReason = dropReason(why);
      this.socket?.destroy();
    };
    this.sessions.add(session);
    const protocolError = (kind: string, message: string) =>
      this.#log.emit({ event: 'protocol.error', remote: this.remote, sessionId: this.sessionId, user: user.username, kind, message: message.slice(0, 300) });
    sftp.on('error', (err: Error) => protocolError('sftp', err.message));
    sftp.on('protocol-error', (e: { kind: string; type?: number; message?: string }) => protocolError(e.kind, e.message ?? `packet type ${e.type ?? '?'}`));
    // ssh2 never closes the channel on the client's EOF; without this OpenSSH's `quit` hangs.
    // An exit-status first: OpenSSH's ssh exits 255 without one, and scp then reports failure.
    sftp.on('end', () => {
      try {
        sendExitStatus(sftp, 0);
      } catch {
        /* channel already closing */
      }
      sftp.end();
    });
    sftp.on('close', () => void this.#endSftp(session));
  }

  /** Called from the channel's close and from the connection's: each session is closed and counted once. */
  #endSftp(session: SftpSession): Promise<void> {
    if (!this.sessions.has(session)) return Promise.resolve();
    let done = this.#ending.get(session);
    if (!done) {
      done = session.close().then(() => {
        this.sessions.delete(session);
        this.#ending.delete(session);
        for (const k of Object.keys(this.#totals) as (keyof SessionTotals)[]) this.#totals[k] += session.totals[k];
      });
      this.#ending.set(session, done);
    }
    return done;
  }

  /** Busy: has a file handle open, requests in flight, or replies waiting for the client's window. */
  get busy(): boolean {
    // Ending sends DISCONNECT at once, ahead of replies ssh2 holds for the window: they would be lost.
    for (const s of this.sessions) if (s.openHandles > 0 || s.inflight > 0 || s.unsentBytes > 0) return true;
    // Likewise what ssh2 queues while a key re-exchange is under way (sent once it completes).
    return packetsHeldForRekey(this.client) > 0;
  }

  async #onClose(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#grace);
    clearTimeout(this.#expiry);
    clearTimeout(this.#idle);
    clearTimeout(this.#endTimer);
    await Promise.all([...this.sessions].map((s) => this.#endSftp(s)));
    if (this.user) {
      this.env.admission.releaseSession(this.user, this.sessionId);
      this.#recordSessionClose(this.user);
    } else this.#recordConnectionClose();
    this.#resolveClosed();
  }

  /** Never logged in: one record of how far it got and why it ended. */
  #recordConnectionClose(): void {
    const kexDone = this.#kex !== undefined;
    this.env.audit.emit({
      event: 'connection.close',
      remote: this.remote,
      sessionId: this.sessionId,
      stage: kexDone ? 'authentication' : 'key-exchange',
      reason: this.#closeReason ?? (kexDone ? 'closed by the client before logging in' : 'closed during key exchange'),
      durationMs: Date.now() - this.opened,
      client: this.clientIdent.slice(0, 200),
      ...(this.#triedUser !== undefined ? { user: this.#triedUser } : {}),
      ...(this.#attempts > 0 ? { failedAttempts: this.#attempts } : {}),
      ...(this.#budget.suppressed > 0 ? { unlogged: this.#budget.suppressed } : {}),
    });
  }

  #recordSessionClose(user: UserRecord): void {
    this.env.audit.emit({
      event: 'session.close',
      remote: this.remote,
      sessionId: this.sessionId,
      user: user.username,
      durationMs: Date.now() - this.opened,
      totals: this.#totals,
      ...(this.#closeReason ? { reason: this.#closeReason } : {}),
      ...(this.#budget.suppressed > 0 ? { unlogged: this.#budget.suppressed } : {}),
    });
  }

  /** Ends the connection; `disconnect` is what the client is told (sshd's words where sshd has some). */
  end(reason?: CloseReason, disconnect: Disconnect = DISCONNECT.byApplication('')): void {
    if (reason) this.#closeReason ??= reason;
    try {
      this.client.end(disconnect.code, disconnect.text);
    } catch {
      /* already gone */
    }
    // A client that stops reading never completes the close handshake.
    if (!this.#endTimer) {
      this.#endTimer = setTimeout(() => this.socket?.destroy(), 2000);
      this.#endTimer.unref();
    }
  }
}
