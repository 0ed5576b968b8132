/**
 * One SSH connection: authentication, limits, refusals, and the SFTP sessions it opens.
 * Every emitter gets an error listener: one client's bad bytes end only that client.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { AuthContext, Connection, ClientInfo, SFTPWrapper } from 'ssh2';
import type { Audit, AuditEmitter, AuthFailureReason, AuthMethod, SessionTotals } from '../audit/events.js';
import { LogBudget } from '../audit/log-budget.js';
import type { UserRecord } from '../config/load.js';
import type { Authenticator } from './auth.js';
import { refuseConnectionRequests, refuseSessionRequests } from './policy.js';
import { SftpSession, SERVER_EXTENSIONS } from '../sftp/session.js';
import { Policy } from '../sftp/policy.js';
import type { FileSystem } from '../fs/file-system.js';
import { paceClientWindow, readIntoSharedBuffer } from './socket-tuning.js';

/** What this module reads of ssh2's internal Protocol object. */
interface Ssh2Protocol {
  /** Packets held while a key re-exchange is under way. */
  _queue?: unknown[];
  setTransientInput?(arrayBuffer: ArrayBuffer): void;
}

/** Protocol errors and refusals one connection may log at once, then per second (see LogBudget). */
const WARNINGS_BURST = 200;
const WARNINGS_PER_SECOND = 20;

export const AUTH_METHODS = ['publickey', 'password', 'keyboard-interactive'] as const;

export interface ConnectionLimits {
  loginGraceSeconds: number;
  maxAuthTries: number;
  idleTimeoutSeconds: number;
  maxSessionsPerConnection: number;
  maxHandlesPerSession: number;
  maxRequestsInFlight: number;
  maxInflightBytesPerSession: number;
}

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
  /** Called once authenticated; false refuses the login (e.g. too many sessions). */
  admit(user: UserRecord, remoteIp: string): string | null;
  released(user: UserRecord): void;
  /** A failed login; returns a penalty in seconds when the source is now blocked. */
  authFailed(conn: ClientConnection): number;
  authSucceeded(conn: ClientConnection): void;
  /** The user's allowFrom check. */
  sourceAllowed(user: UserRecord, ip: string): boolean;
  /** Set by the server on shutdown: finish, then end. */
  draining(): boolean;
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

export function formatRemote(ip: string | undefined, port: number | undefined): string {
  const host = ip ?? 'unknown';
  return host.includes(':') ? `[${host}]:${port ?? 0}` : `${host}:${port ?? 0}`;
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
  #channels = 0;
  #ended = false;
  #cipher: string | undefined;
  #closeReason: string | undefined;
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
    const env = this.env;
    const limits = env.limits();
    const username = ctx.username;
    this.#triedUser = username;
    const method = ctx.method as AuthMethod;
    const fail = (reason: AuthFailureReason, counted = true) => {
      if (counted) this.#attempts++;
      env.audit.emit({ event: 'auth.failure', remote: this.remote, sessionId: this.sessionId, user: username, method, reason, attempt: this.#attempts });
      const penalty = counted ? env.authFailed(this) : 0;
      if (penalty > 0) {
        env.audit.emit({ event: 'request.refused', remote: this.remote, sessionId: this.sessionId, user: username, what: 'login', why: 'penalty', detail: `${this.#attempts} failed logins; ${this.ip} refused for ${penalty}s` });
        ctx.reject([...AUTH_METHODS]);
        this.end('penalty', DISCONNECT.tooManyFailures);
        return;
      }
      if (this.#attempts >= limits.maxAuthTries) {
        env.audit.emit({ event: 'auth.failure', remote: this.remote, sessionId: this.sessionId, user: username, method, reason: 'too-many-attempts', attempt: this.#attempts });
        // Disconnect instead of answering, as sshd does: the client cannot try a seventh time.
        this.end('too many authentication failures', DISCONNECT.tooManyFailures);
        return;
      }
      ctx.reject([...AUTH_METHODS]);
    };
    const succeed = (user: UserRecord, extra: { keyType?: string; keyFingerprint?: string } = {}) => {
      if (!env.sourceAllowed(user, this.ip)) return fail('source-not-allowed');
      const refusal = env.admit(user, this.ip);
      if (refusal) {
        env.audit.emit({ event: 'request.refused', remote: this.remote, sessionId: this.sessionId, user: user.username, what: 'login', why: refusal });
        ctx.reject([...AUTH_METHODS]);
        this.end(refusal, DISCONNECT.byApplication(refusal === 'too-many-sessions' ? 'Too many sessions for this user' : 'Server shutting down'));
        return;
      }
      this.user = user;
      env.authSucceeded(this);
      env.audit.emit({ event: 'auth.success', remote: this.remote, sessionId: this.sessionId, user: user.username, method, ...extra });
      ctx.accept();
    };

    const auth = env.auth();
    switch (ctx.method) {
      case 'none':
        // OpenSSH probes with "none" first; not an attempt.
        ctx.reject([...AUTH_METHODS]);
        return;
      case 'password': {
        const r = await auth.password(username, ctx.password);
        const u = auth.user(username);
        if (r.ok && u) return succeed(u);
        return fail(r.ok ? 'unknown-user' : r.reason);
      }
      case 'keyboard-interactive': {
        const answers = await new Promise<string[] | null>((resolve) => {
          // No title, as sshd with PAM: the client prints just the prompt.
          ctx.prompt([{ prompt: 'Password: ', echo: false }], '', '', (responses) => resolve(responses));
          ctx.once?.('abort', () => resolve(null));
        });
        if (!answers) return;
        const r = await auth.password(username, answers[0] ?? '');
        const u = auth.user(username);
        if (r.ok && u) return succeed(u);
        return fail(r.ok ? 'unknown-user' : r.reason);
      }
      case 'publickey': {
        const r = auth.publickey(username, { algo: ctx.key.algo, data: ctx.key.data, signature: ctx.signature, blob: ctx.blob, hashAlgo: ctx.hashAlgo });
        const u = auth.user(username);
        if (ctx.signature === undefined) {
          // The "would you accept this key?" query: answer without counting an attempt.
          if (r.ok) return ctx.accept();
          env.audit.emit({ event: 'auth.failure', remote: this.remote, sessionId: this.sessionId, user: username, method, reason: r.reason, attempt: this.#attempts, probe: true });
          return ctx.reject([...AUTH_METHODS]);
        }
        if (r.ok && u) return succeed(u, r.key ? { keyType: r.key.type, keyFingerprint: r.key.fingerprint } : {});
        return fail(r.ok ? 'unknown-user' : r.reason);
      }
      default:
        return fail('method-not-allowed', false);
    }
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
    if (limits.idleTimeoutSeconds > 0) {
      this.#idle = setTimeout(() => {
        this.#log.emit({ event: 'request.refused', remote: this.remote, sessionId: this.sessionId, user: user.username, what: 'session', why: 'idle-timeout', detail: `idle for ${limits.idleTimeoutSeconds}s` });
        this.end('idle timeout', DISCONNECT.byApplication('Idle timeout'));
      }, limits.idleTimeoutSeconds * 1000);
      this.#idle.unref();
    }
    this.client.on('session', (accept, reject) => {
      this.#touch();
      if (this.env.draining()) {
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
      session.on('sftp', (acceptSftp) => {
        const sftp = acceptSftp();
        this.#startSftp(sftp, user);
      });
    });
  }

  #startSftp(sftp: SFTPWrapper, user: UserRecord): void {
    if (this.socket) {
      // Authenticated and transferring from now on: no fresh buffer per socket read.
      readIntoSharedBuffer(this.socket, this.#protocol ?? {});
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
      hashUploads: this.env.hashUploads(),
      hostRoot: this.env.hostPaths() ? user.root : undefined,
      observeRequest: this.env.observeRequest,
      ownerName: user.username,
      groupName: user.group ?? user.username,
    });
    session.onActivity = this.#touch;
    session.onDrop = (why) => {
      this.#closeReason = why;
      this.socket?.destroy();
    };
    this.sessions.add(session);
    sftp.on('error', (err: Error) => {
      this.#log.emit({ event: 'protocol.error', remote: this.remote, sessionId: this.sessionId, user: user.username, kind: 'sftp', message: err.message.slice(0, 300) });
    });
    sftp.on('protocol-error', (e: { kind: string; type?: number; message?: string }) => {
      this.#log.emit({ event: 'protocol.error', remote: this.remote, sessionId: this.sessionId, user: user.username, kind: e.kind, message: (e.message ?? `packet type ${e.type ?? '?'}`).slice(0, 300) });
    });
    // ssh2 never closes the channel on the client's EOF; without this OpenSSH's `quit` hangs.
    // An exit-status first: OpenSSH's ssh exits 255 without one, and scp then reports failure.
    sftp.on('end', () => {
      const internals = sftp as unknown as { _protocol?: { exitStatus(id: number, code: number): void }; outgoing?: { id: number; state: string } };
      try {
        if (internals.outgoing?.state === 'open') internals._protocol?.exitStatus(internals.outgoing.id, 0);
      } catch {
        /* channel already closing */
      }
      sftp.end();
    });
    sftp.on('close', () => {
      void this.#endSftp(session);
    });
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
    return (this.#protocol?._queue?.length ?? 0) > 0;
  }

  /** ssh2's Protocol behind the connection (internal): its kex queue, and the patched setTransientInput. */
  get #protocol(): Ssh2Protocol | undefined {
    return (this.client as unknown as { _protocol?: Ssh2Protocol })._protocol;
  }

  async #onClose(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#grace);
    clearTimeout(this.#idle);
    clearTimeout(this.#endTimer);
    await Promise.all([...this.sessions].map((s) => this.#endSftp(s)));
    if (!this.user) {
      // Never logged in: one record of how far it got and why it ended.
      this.env.audit.emit({
        event: 'connection.close',
        remote: this.remote,
        sessionId: this.sessionId,
        stage: this.#kex === undefined ? 'key-exchange' : 'authentication',
        reason: this.#closeReason ?? (this.#kex === undefined ? 'closed during key exchange' : 'closed by the client before logging in'),
        durationMs: Date.now() - this.opened,
        client: this.clientIdent.slice(0, 200),
        ...(this.#triedUser !== undefined ? { user: this.#triedUser } : {}),
        ...(this.#attempts > 0 ? { failedAttempts: this.#attempts } : {}),
        ...(this.#budget.suppressed > 0 ? { unlogged: this.#budget.suppressed } : {}),
      });
    }
    if (this.user) {
      this.env.released(this.user);
      this.env.audit.emit({
        event: 'session.close',
        remote: this.remote,
        sessionId: this.sessionId,
        user: this.user.username,
        durationMs: Date.now() - this.opened,
        totals: this.#totals,
        ...(this.#closeReason ? { reason: this.#closeReason } : {}),
        ...(this.#budget.suppressed > 0 ? { unlogged: this.#budget.suppressed } : {}),
      });
    }
    this.#resolveClosed();
  }

  /** Ends the connection; `disconnect` is what the client is told (sshd's words where sshd has some). */
  end(reason?: string, disconnect: Disconnect = DISCONNECT.byApplication('')): void {
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
