/**
 * Assembles a running server from a validated config: host keys, audit sinks, authenticator,
 * one jail per root, the ssh2 protocol server and our own TCP listener (for pre-SSH timeouts).
 */
import { createServer, isIPv6, type Server as NetServer, type Socket } from 'node:net';
import { mkdir } from 'node:fs/promises';
import type * as Ssh2 from 'ssh2';
import { ssh2, cryptoBindingAvailable as bindingAvailable } from './ssh/ssh2.js';
import { assertSsh2Patched } from './ssh/ssh2-probe.js';
import type { ServerConfig, UserRecord } from './config/load.js';
import { Audit, type AuditSink } from './audit/events.js';
import { JsonSink, PrettySink } from './audit/pino-sink.js';
import { AuthLogSink, XferlogSink } from './audit/text-sinks.js';
import { Authenticator } from './ssh/auth.js';
import { loadHostKeys, type HostKey } from './ssh/host-keys.js';
import { ClientConnection, DISCONNECT, formatRemote, type ConnectionEnv, type ConnectionLimits } from './ssh/connection.js';
import { Jail } from './jail/jail.js';
import { Defence, addressAllowed, parseAllowFrom } from './ssh/defence.js';
import type { BlockList } from 'node:net';
import { Metrics } from './admin/metrics.js';
import { AggregatorRegistry } from 'prom-client';
import { startAdmin } from './admin/http.js';
import * as native from './jail/native.js';
import type { FileSystem } from './fs/file-system.js';
import { ConfigError } from './errors.js';
import { readProxyHeader } from './ssh/proxy-protocol.js';
import { tuneSocket } from './ssh/socket-tuning.js';
import { resolveAlgorithms, hostKeyUsable, USER_SIGNATURE_ALGORITHMS } from './ssh/algorithms.js';

const { Server: SshServer } = ssh2;

/** Messages between worker processes (node:cluster) so limits and penalties hold across them. */
export type PeerMessage =
  | { t: 'auth-failed'; ip: string }
  | { t: 'auth-succeeded'; ip: string }
  | { t: 'session-admitted'; user: string }
  | { t: 'session-released'; user: string };

/** A channel to the other workers of one daemon (see src/cluster.ts). */
export interface Peers {
  send(msg: PeerMessage): void;
  onMessage(handler: (msg: PeerMessage) => void): void;
}

export interface StartOptions {
  /** Other worker processes sharing this daemon's limits and penalties. */
  peers?: Peers;
  /** Collect metrics but leave serving them to the cluster primary (it aggregates all workers). */
  metricsOnly?: boolean;
  /** Fields stamped on every audit record built from config (e.g. { worker: 2 }). */
  auditExtra?: Record<string, string | number>;
  /** In-memory host keys (skip config/keysDir). */
  hostKeys?: HostKey[];
  /** Use this audit fan-out instead of building sinks from config.log. */
  audit?: Audit;
  /** Extra sinks added to the audit built from config. */
  sinks?: AuditSink[];
  /** Wraps each user's FileSystem (the fault-injection seam). */
  wrapFileSystem?: (fs: FileSystem, user: UserRecord) => FileSystem;
}

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  readonly hostKeys: readonly HostKey[];
  readonly audit: Audit;
  readonly config: ServerConfig;
  /** Port of the admin HTTP listener (/healthz, /metrics) when config.admin is set. */
  readonly adminPort: number | undefined;
  /** Number of open SSH connections. */
  connections(): number;
  /** Replaces users, keys and policy; running sessions keep theirs. */
  reload(config: ServerConfig): Promise<void>;
  /** Stops listening; waits up to graceMs for busy sessions, then ends everything. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

async function prepareRoots(users: readonly UserRecord[]): Promise<void> {
  for (const u of users) {
    if (u.createRoot !== false) await mkdir(u.root, { recursive: true, mode: u.createRoot });
    if (u.startDirectory !== '/') {
      // The start directory is made inside the root, through the jail like any client request.
      const jail = new Jail(u.root);
      try {
        const parts = u.startDirectory.split('/').filter(Boolean);
        for (let i = 1; i <= parts.length; i++) {
          await jail.mkdir('/' + parts.slice(0, i).join('/'), 0o755 & ~u.umask).catch((e: unknown) => {
            if ((e as { code?: string }).code !== 'EEXIST') throw e;
          });
        }
      } finally {
        await jail.close();
      }
    }
  }
}

function limitsOf(c: ServerConfig): ConnectionLimits {
  const l = c.limits;
  return {
    loginGraceSeconds: l.loginGraceSeconds,
    maxAuthTries: l.maxAuthTries,
    idleTimeoutSeconds: l.idleTimeoutSeconds,
    maxSessionsPerConnection: l.maxSessionsPerConnection,
    maxHandlesPerSession: l.maxHandlesPerSession,
    maxRequestsInFlight: l.maxRequestsInFlight,
    maxInflightBytesPerSession: l.maxInflightBytesPerSession,
  };
}

export function auditFromConfig(config: ServerConfig, opts: { stdout?: boolean; extra?: Record<string, string | number> } = {}): Audit {
  const audit = new Audit(config.serverName, opts.extra);
  const log = config.log;
  if (log.level !== 'silent' && (log.file !== undefined || opts.stdout !== false)) {
    const pretty = log.pretty === 'always' || (log.pretty === 'auto' && !log.file && process.stdout.isTTY === true);
    audit.addSink(pretty ? new PrettySink(log.level) : new JsonSink({ file: log.file, level: log.level }));
  }
  if (log.xferlog) audit.addSink(new XferlogSink(log.xferlog));
  if (log.authLog) audit.addSink(new AuthLogSink(log.authLog));
  return audit;
}

/** ssh2's native crypto binding (built at install) doubles throughput; without it the server is slow. */
export function cryptoBindingAvailable(): boolean {
  return bindingAvailable();
}

export async function startServer(initial: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const addonError = native.loadError();
  if (addonError) {
    throw new Error(
      `the jail addon cannot be loaded (${addonError.message.split('\n')[0]}). Prebuilt addons ship for linux-x64 and linux-arm64 (glibc); elsewhere build it once with a C compiler, make and python3: cd "${native.packageRoot()}" && npx node-gyp rebuild`,
    );
  }
  if (!native.probe()) {
    throw new Error('this kernel cannot confine paths (openat2 with RESOLVE_IN_ROOT needs Linux 5.6 or later, not blocked by seccomp); refusing to start');
  }
  assertSsh2Patched();
  let config = initial;
  await prepareRoots(config.users);
  const hostKeys = opts.hostKeys ?? (await loadHostKeys(config.hostKeys, config.keysDir));
  const audit = opts.audit ?? auditFromConfig(config, opts.auditExtra ? { extra: opts.auditExtra } : {});
  for (const s of opts.sinks ?? []) audit.addSink(s);
  const metrics = config.admin ? new Metrics() : undefined;
  if (metrics) audit.addSink(metrics);
  let auth = new Authenticator(config.users, config.passwordCost);
  const jails = new Map<string, Jail>();
  const connections = new Set<ClientConnection>();
  const sockets = new Set<Socket>();
  const sessionsPerUser = new Map<string, number>();
  // Sessions other worker processes hold, by user (so maxSessions counts the whole daemon).
  const peerSessions = new Map<string, number>();
  let draining = false;
  const defenceOptions = (c: ServerConfig) => ({ maxStartups: c.limits.maxStartups, maxConnectionsPerSource: c.limits.maxConnectionsPerSource, penalty: c.limits.penalty });
  const defence = new Defence(defenceOptions(config));
  /** Sockets whose SSH identification ssh2 received (it then made a ClientConnection, which logs the end). */
  const identified = new WeakSet<Socket>();
  // Sockets still counted as unauthenticated "startups", and how to stop counting them.
  const startupDone = new WeakMap<Socket, () => void>();
  let allowLists = new Map<string, BlockList>();
  const buildAllowLists = (c: ServerConfig) => {
    allowLists = new Map();
    for (const u of c.users) if (u.allowFrom) {
      const bl = parseAllowFrom(u.allowFrom);
      if (!(bl instanceof Error)) allowLists.set(u.username, bl);
    }
  };
  buildAllowLists(config);
  opts.peers?.onMessage((m) => {
    if (m.t === 'auth-failed') defence.authFailed(m.ip);
    else if (m.t === 'auth-succeeded') defence.authSucceeded(m.ip);
    else {
      const n = (peerSessions.get(m.user) ?? 0) + (m.t === 'session-admitted' ? 1 : -1);
      if (n <= 0) peerSessions.delete(m.user);
      else peerSessions.set(m.user, n);
    }
  });
  const buildProxyTrusted = (c: ServerConfig) => {
    const bl = parseAllowFrom(c.listen.proxyTrusted);
    return bl instanceof Error ? (parseAllowFrom([]) as BlockList) : bl;
  };
  let proxyTrusted = buildProxyTrusted(config);

  const jailFor = (user: UserRecord): FileSystem => {
    let jail = jails.get(user.root);
    if (!jail) {
      jail = new Jail(user.root);
      jails.set(user.root, jail);
    }
    return opts.wrapFileSystem ? opts.wrapFileSystem(jail, user) : jail;
  };

  const env: ConnectionEnv = {
    audit,
    auth: () => auth,
    limits: () => limitsOf(config),
    hashUploads: () => config.log.hashUploads === 'sha256',
    hostPaths: () => config.log.hostPaths,
    observeRequest: metrics ? (name, seconds) => metrics.observeRequest(name, seconds) : undefined,
    fileSystem: jailFor,
    admit: (user) => {
      if (draining) return 'server shutting down';
      const n = (sessionsPerUser.get(user.username) ?? 0) + (peerSessions.get(user.username) ?? 0);
      const max = Math.min(user.maxSessions ?? Infinity, config.limits.maxSessionsPerUser);
      if (n >= max) return 'too-many-sessions';
      sessionsPerUser.set(user.username, (sessionsPerUser.get(user.username) ?? 0) + 1);
      opts.peers?.send({ t: 'session-admitted', user: user.username });
      return null;
    },
    released: (user) => {
      const n = (sessionsPerUser.get(user.username) ?? 1) - 1;
      if (n <= 0) sessionsPerUser.delete(user.username);
      else sessionsPerUser.set(user.username, n);
      opts.peers?.send({ t: 'session-released', user: user.username });
    },
    authFailed: (conn) => {
      opts.peers?.send({ t: 'auth-failed', ip: conn.ip });
      return defence.authFailed(conn.ip);
    },
    authSucceeded: (conn) => {
      opts.peers?.send({ t: 'auth-succeeded', ip: conn.ip });
      defence.authSucceeded(conn.ip);
      if (conn.socket) startupDone.get(conn.socket)?.();
    },
    sourceAllowed: (user, ip) => {
      const bl = allowLists.get(user.username);
      return !bl || addressAllowed(bl, ip);
    },
    draining: () => draining,
  };

  const algos = resolveAlgorithms(config.algorithms);
  // Only keys the algorithm lists can use are loaded: ssh2 offers every key it is given.
  const offeredKeys = hostKeys.filter((k) => hostKeyUsable(k.type, algos.hostKey));
  if (offeredKeys.length === 0) throw new ConfigError([{ path: 'algorithms.hostKey', message: `none of the host keys (${hostKeys.map((k) => k.type).join(', ')}) can be used with ${algos.hostKey.join(', ')}` }]);
  const keyWarnings = hostKeys.filter((k) => !offeredKeys.includes(k)).map((k) => `host key ${k.type} ${k.fingerprint} is not offered: algorithms.hostKey does not allow it`);
  const ssh = new SshServer(
    {
      hostKeys: offeredKeys.map((k) => k.pem),
      algorithms: {
        kex: [...algos.kex] as Ssh2.KexAlgorithm[],
        cipher: [...algos.cipher] as Ssh2.CipherAlgorithm[],
        hmac: [...algos.mac] as Ssh2.MacAlgorithm[],
        // No compression: zlib before authentication is a decompression bomb.
        compress: ['none'],
        serverHostKey: algos.hostKey.filter((a) => offeredKeys.some((k) => hostKeyUsable(k.type, [a]))) as Ssh2.ServerHostKeyAlgorithm[],
      },
      ident: 'sftp-chroot',
      ...(config.banner !== undefined ? { banner: config.banner } : {}),
      // Patched ssh2 (server-sig-algs): exactly the signatures Authenticator verifies.
      serverSigAlgs: USER_SIGNATURE_ALGORITHMS.join(','),
    } as Ssh2.ServerConfig,
    (client, info) => {
      const socket = (client as unknown as { _sock?: Socket })._sock;
      if (socket) identified.add(socket);
      const conn = new ClientConnection(client, info, socket, env);
      connections.add(conn);
      void conn.closed.then(() => connections.delete(conn));
    },
  );
  ssh.on('error', () => undefined);

  const tcp: NetServer = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const peer = formatRemote(socket.remoteAddress, socket.remotePort);
    if (draining) {
      socket.destroy();
      return;
    }
    if (sockets.size > config.limits.maxConnections) {
      audit.emit({ event: 'request.refused', remote: peer, what: 'connection', why: 'too-many-connections', detail: `more than ${config.limits.maxConnections} connections` });
      socket.destroy();
      return;
    }
    const mode = config.listen.proxyProtocol;
    if (mode === 'off') return admit(socket);
    if (!addressAllowed(proxyTrusted, socket.remoteAddress ?? '')) {
      // Only the load balancers may speak PROXY; in 'optional' mode anyone else is a direct client.
      if (mode === 'optional') return admit(socket);
      audit.emit({ event: 'request.refused', remote: peer, what: 'connection', why: 'proxy-untrusted', detail: 'PROXY protocol required and the peer is not in listen.proxyTrusted' });
      socket.destroy();
      return;
    }
    // Read before anything listens for 'data': the header never reaches ssh2, the bytes after it do.
    readProxyHeader(socket, { mode, timeoutMs: config.limits.loginGraceSeconds * 1000 }).then(
      (source) => {
        if (socket.destroyed) return;
        if (draining) {
          socket.destroy();
          return;
        }
        if (source) {
          // The client's address becomes the connection's: ssh2's info.ip, the audit's remote, penalties, allowFrom.
          Object.defineProperty(socket, 'remoteAddress', { value: source.ip, configurable: true });
          Object.defineProperty(socket, 'remotePort', { value: source.port, configurable: true });
          Object.defineProperty(socket, 'remoteFamily', { value: isIPv6(source.ip) ? 'IPv6' : 'IPv4', configurable: true });
        }
        admit(socket);
      },
      (err: Error) => {
        if (!draining) audit.emit({ event: 'request.refused', remote: peer, what: 'connection', why: 'proxy-protocol', detail: err.message.slice(0, 300) });
        socket.destroy();
      },
    );
  });

  /** Per-source admission and hand-over to ssh2, with the client's own address (after any PROXY header). */
  function admit(socket: Socket): void {
    const remote = formatRemote(socket.remoteAddress, socket.remotePort);
    const ip = socket.remoteAddress ?? 'unknown';
    const refusal = defence.admitConnection(ip);
    if (refusal) {
      const until = defence.blockedUntil(ip);
      audit.emit({ event: 'request.refused', remote, what: 'connection', why: refusal, ...(refusal === 'penalty' ? { detail: `refused until ${new Date(until).toISOString()}` } : {}) });
      socket.destroy();
      return;
    }
    let startup = true;
    const done = () => {
      if (startup) {
        startup = false;
        defence.startupDone();
      }
    };
    startupDone.set(socket, done);
    socket.once('close', () => {
      done();
      defence.connectionClosed(ip);
    });
    // Until the client's SSH ident arrives ssh2 does not see the connection: time it out here.
    const opened = Date.now();
    let ended: string | undefined;
    const preauth = setTimeout(() => {
      audit.emit({ event: 'request.refused', remote, what: 'connection', why: 'login-grace-exceeded', detail: 'no SSH identification received' });
      ended = 'login grace time exceeded';
      socket.destroy();
    }, config.limits.loginGraceSeconds * 1000);
    preauth.unref();
    socket.once('data', () => clearTimeout(preauth));
    socket.once('error', (e: Error) => (ended ??= `error: ${e.message.slice(0, 200)}`));
    socket.once('close', () => {
      clearTimeout(preauth);
      // ssh2 never saw it (no identification): the connection's only record.
      if (!identified.has(socket))
        audit.emit({ event: 'connection.close', remote, stage: 'ident', reason: ended ?? (draining ? 'server shutdown' : 'closed by the client before identifying'), durationMs: Date.now() - opened });
    });
    tuneSocket(socket);
    ssh.injectSocket(socket);
  }
  tcp.on('error', (err) => audit.emit({ event: 'server.warning', message: `listener error: ${err.message}` }));

  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(config.listen.port, config.listen.host, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const address = tcp.address();
  const port = typeof address === 'object' && address ? address.port : config.listen.port;
  let listening = true;
  if (metrics && opts.metricsOnly) {
    // Constructing one installs prom-client's worker-side listener that answers the primary.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([metrics.registry]);
  }
  const admin = config.admin && metrics && !opts.metricsOnly ? await startAdmin({ ...config.admin.listen, metrics, healthy: () => listening && !draining }) : undefined;

  for (const w of [...config.warnings, ...keyWarnings]) audit.emit({ event: 'server.warning', message: w });
  if (!cryptoBindingAvailable()) {
    audit.emit({ event: 'server.warning', message: "ssh2's native crypto binding is missing: transfers will run at about half speed with twice the CPU. Reinstall with a C compiler, make and python3 available (npm rebuild ssh2)." });
  }
  for (const k of hostKeys) audit.emit({ event: 'server.hostkey', message: `host key ${k.type} ${k.fingerprint}${k.generated ? ' (generated)' : ''}`, fingerprint: k.fingerprint, keyType: k.type, ...(k.path ? { path: k.path } : {}) });

  let closing: Promise<void> | undefined;
  return {
    host: config.listen.host,
    port,
    hostKeys,
    audit,
    get config() {
      return config;
    },
    adminPort: admin?.port,
    connections: () => connections.size,
    async reload(next: ServerConfig) {
      await prepareRoots(next.users);
      config = next;
      defence.update(defenceOptions(next));
      buildAllowLists(next);
      proxyTrusted = buildProxyTrusted(next);
      auth = new Authenticator(next.users, next.passwordCost);
      // Jails of roots no one uses any more close once their last operation ends.
      const roots = new Set(next.users.map((u) => u.root));
      for (const [root, jail] of jails) {
        if (!roots.has(root) && ![...connections].some((c) => c.user?.root === root)) {
          jails.delete(root);
          void jail.close();
        }
      }
      audit.emit({ event: 'server.reload', message: `configuration reloaded (${next.users.length} users)` });
    },
    close(o: { graceMs?: number } = {}) {
      closing ??= (async () => {
        draining = true;
        listening = false;
        // tcp.close() calls back only when every connection is gone: end them first, await it last.
        const stopped = new Promise<void>((resolve) => tcp.close(() => resolve()));
        const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
        const deadline = Date.now() + (o.graceMs ?? 0);
        while (Date.now() < deadline && [...connections].some((c) => c.busy)) await sleep(50);
        const waits = Promise.all([...connections].map((c) => c.closed));
        for (const c of connections) c.end('server shutdown', DISCONNECT.byApplication('Server shutting down'));
        // A client that stops reading never completes the close handshake: cut it after a second.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([waits, new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
        clearTimeout(timer);
        for (const s of sockets) s.destroy();
        await Promise.race([waits, sleep(0)]);
        await stopped;
        for (const j of jails.values()) await j.close();
        jails.clear();
        await admin?.close();
        audit.emit({ event: 'server.stop', message: 'stopped' });
        if (!opts.audit) await audit.close();
      })();
      return closing;
    },
  };
}
