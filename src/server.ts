/**
 * Wiring only: assembles a running server from a validated config. Each concern is a component
 * with reload(config): the listener (src/ssh/listener.ts), admission (src/ssh/admission.ts), the
 * config and authenticator connections read (src/server/live-config.ts), the jails
 * (src/server/jail-registry.ts); the ssh2 server's config comes from src/ssh/algorithms.ts.
 */
import type * as Ssh2 from 'ssh2';
import { ssh2, cryptoBindingAvailable as bindingAvailable, socketOf } from './ssh/ssh2.js';
import type { ServerConfig, UserRecord } from './config/load.js';
import type { Audit, AuditSink } from './audit/events.js';
import type { Metrics } from './admin/metrics.js';
import { startAdmin } from './admin/http.js';
import { loadHostKeys, type HostKey } from './ssh/host-keys.js';
import { ClientConnection, type ConnectionEnv } from './ssh/connection.js';
import { Admission, type Peers } from './ssh/admission.js';
import { Listener } from './ssh/listener.js';
import { ssh2ServerConfig } from './ssh/algorithms.js';
import type { FileSystem } from './fs/file-system.js';
import { assertCanServe } from './server/preflight.js';
import { prepareRoots } from './server/roots.js';
import { auditFromConfig, metricsFor } from './server/audit.js';
import { LiveConfig } from './server/live-config.js';
import { JailRegistry } from './server/jail-registry.js';
import { Connections } from './server/connections.js';
import { ServerHooks } from './server/hooks.js';
import { isLeftover, sweepStaged } from './server/sweep-staged.js';
import { QuotaRegistry } from './server/quota.js';
import { BandwidthRegistry } from './server/bandwidth.js';
import type { RedisStore } from './shared/redis-store.js';
import type { SharedSetting } from './config/shared.js';
import type { Clock } from './sftp/token-bucket.js';

export { auditFromConfig };

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
  /** A worker's slot (1..N) with "workers" > 1: its own hook spool folders (src/hooks/layout.ts). */
  hookSlot?: number;
  /** Remove staging files an earlier run left (default true; one worker of a daemon does it). */
  sweepStaged?: boolean;
  /** The bandwidth limits' clock (tests run simulated seconds); the system clock otherwise. */
  bandwidthClock?: Clock;
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

/** ssh2's native crypto binding (built at install) doubles throughput; without it the server is slow. */
export function cryptoBindingAvailable(): boolean {
  return bindingAvailable();
}

/** The parts of a server, each taking a new config on reload. */
interface Parts {
  live: LiveConfig;
  audit: Audit;
  metrics: Metrics | undefined;
  hooks: ServerHooks;
  admission: Admission;
  jails: JailRegistry;
  quotas: QuotaRegistry;
  bandwidth: BandwidthRegistry;
  store: RedisStore | undefined;
  connections: Connections;
  listener: Listener;
}

export async function startServer(initial: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  assertCanServe();
  await prepareRoots(initial.users);
  const hostKeys = opts.hostKeys ?? (await loadHostKeys(initial.hostKeys, initial.keysDir));
  const audit = opts.audit ?? auditFromConfig(initial, opts.auditExtra ? { extra: opts.auditExtra } : {});
  for (const s of opts.sinks ?? []) audit.addSink(s);
  const metrics = metricsFor(initial, audit, opts.metricsOnly === true);
  // Spools opened and an earlier run's backlog resumed before the first client can add to it.
  const hooks = new ServerHooks(initial, { audit, metrics, worker: opts.hookSlot });
  audit.addSink(hooks);
  await hooks.start(initial);
  const { ssh2: sshConfig, notOffered } = ssh2ServerConfig(initial, hostKeys);
  const connections = new Connections();
  // Optional: several instances count sessions, bandwidth and quota usage together (src/shared/).
  const store = initial.shared ? await openSharedStore(initial.shared, audit) : undefined;
  const admission = new Admission(initial, audit, opts.peers, undefined, store);
  // Staging files the sweep below removes are not counted by the quota walks.
  const quotas = new QuotaRegistry(initial, { audit, skip: opts.sweepStaged !== false ? (name) => isLeftover(name) : undefined, shared: store });
  metrics?.watchQuotas(() => quotas.gauges());
  const jails = new JailRegistry({ wrap: opts.wrapFileSystem, quota: (fs, user) => quotas.wrap(fs, user), inUse: (root) => connections.usesRoot(root) });
  const ssh = sshServer(sshConfig, (client, info) => {
    const socket = socketOf(client);
    if (socket) listener.identified(socket);
    connections.add(new ClientConnection(client, info, socket, env));
  });
  const listener = new Listener(initial, { audit, admission, handOver: (socket) => ssh.injectSocket(socket) });
  const bandwidth = new BandwidthRegistry(initial, { clock: opts.bandwidthClock, onWait: metrics && ((d, s) => metrics.bandwidthWaited(d, s)) });
  if (store) bandwidth.shareThrough(store);
  const parts: Parts = { live: new LiveConfig(initial), audit, metrics, hooks, admission, jails, quotas, bandwidth, store, connections, listener };
  const env = connectionEnv(parts);
  const port = await listener.listen(initial.listen.port, initial.listen.host).catch(async (e: unknown) => {
    bandwidth.stopSharing();
    await quotas.close();
    await store?.close();
    throw e;
  });
  const admin = initial.admin && metrics && !opts.metricsOnly ? await startAdmin({ ...initial.admin.listen, metrics, healthy: () => listener.listening }) : undefined;
  announce(initial, audit, hostKeys, notOffered);
  // In the background: logins are not delayed by a walk of every root.
  if (opts.sweepStaged !== false) void sweepStaged(initial.users, audit);
  return new Running(parts, { port, hostKeys, adminPort: admin?.port, closeAdmin: () => admin?.close(), ownAudit: !opts.audit });
}

/** Loaded only when configured: the Redis client is hundreds of modules a single instance never needs. */
async function openSharedStore(setting: SharedSetting, audit: Audit): Promise<RedisStore> {
  const { RedisStore } = await import('./shared/redis-store.js');
  const store = new RedisStore(setting, audit);
  await store.connect();
  return store;
}

function sshServer(config: Ssh2.ServerConfig, onConnection: (client: Ssh2.Connection, info: Ssh2.ClientInfo) => void): Ssh2.Server {
  const ssh = new ssh2.Server(config, onConnection);
  ssh.on('error', () => undefined);
  return ssh;
}

/** What each connection reads of the server: the current config, the jails, admission. */
function connectionEnv({ live, audit, metrics, jails, bandwidth, admission }: Parts): ConnectionEnv {
  return {
    audit,
    auth: () => live.auth,
    limits: () => live.config.limits,
    hashUploads: () => live.config.log.hashUploads === 'sha256',
    hostPaths: () => live.config.log.hostPaths,
    observeRequest: metrics ? (name, seconds) => metrics.observeRequest(name, seconds) : undefined,
    fileSystem: (user) => jails.fileSystem(user),
    bandwidth: (username) => bandwidth.forUser(username),
    admission,
  };
}

/** The start's records: config and host-key warnings, a missing crypto binding, the host keys. */
function announce(config: ServerConfig, audit: Audit, hostKeys: readonly HostKey[], notOffered: readonly HostKey[]): void {
  for (const message of config.warnings) audit.emit({ event: 'server.warning', code: 'config', message });
  for (const k of notOffered) audit.emit({ event: 'server.warning', code: 'host-key-not-offered', message: `host key ${k.type} ${k.fingerprint} is not offered: algorithms.hostKey does not allow it` });
  if (!cryptoBindingAvailable()) {
    audit.emit({ event: 'server.warning', code: 'crypto-binding-missing', message: "ssh2's native crypto binding is missing: transfers will run at about half speed with twice the CPU. Reinstall with a C compiler, make and python3 available (npm rebuild ssh2)." });
  }
  for (const k of hostKeys) audit.emit({ event: 'server.hostkey', message: `host key ${k.type} ${k.fingerprint}${k.generated ? ' (generated)' : ''}`, fingerprint: k.fingerprint, keyType: k.type, ...(k.path ? { path: k.path } : {}) });
}

interface Started {
  port: number;
  hostKeys: readonly HostKey[];
  adminPort: number | undefined;
  closeAdmin(): Promise<void> | undefined;
  /** The audit was built here (not passed in): close() closes it. */
  ownAudit: boolean;
}

/** Its methods are bound: `afterAll(server.close)` works, as it did when this was an object literal. */
class Running implements RunningServer {
  readonly host: string;
  readonly port: number;
  readonly hostKeys: readonly HostKey[];
  readonly audit: Audit;
  readonly adminPort: number | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    readonly parts: Parts,
    readonly started: Started,
  ) {
    this.host = parts.live.config.listen.host;
    this.port = started.port;
    this.hostKeys = started.hostKeys;
    this.audit = parts.audit;
    this.adminPort = started.adminPort;
  }

  get config(): ServerConfig {
    return this.parts.live.config;
  }

  readonly connections = (): number => this.parts.connections.size;

  readonly reload = (next: ServerConfig): Promise<void> => reload(this.parts, next);

  readonly close = (o: { graceMs?: number } = {}): Promise<void> => {
    this.#closing ??= close(this.parts, this.started, o.graceMs ?? 0);
    return this.#closing;
  };
}

async function reload(parts: Parts, next: ServerConfig): Promise<void> {
  await prepareRoots(next.users);
  parts.live.reload(next);
  parts.admission.reload(next);
  parts.listener.reload(next);
  parts.jails.reload(next);
  parts.quotas.reload(next);
  parts.bandwidth.reload(next);
  await parts.hooks.reload(next);
  parts.audit.emit({ event: 'server.reload', message: `configuration reloaded (${next.users.length} users)` });
  parts.connections.checkAccounts();
}

async function close({ admission, listener, connections, jails, quotas, bandwidth, store, hooks, audit }: Parts, started: Started, graceMs: number): Promise<void> {
  admission.drain();
  // The listener's close completes only when every connection is gone: end them first, await it last.
  const stopped = listener.close();
  await connections.endAll(graceMs, () => listener.destroySockets());
  await stopped;
  await jails.close();
  await quotas.close();
  bandwidth.stopSharing();
  // After the sessions ended: their leases are given back now, not when they expire.
  await store?.close();
  await started.closeAdmin();
  // After the sessions' last records, before the audit that logs what the hooks report.
  await hooks.close();
  audit.emit({ event: 'server.stop', message: 'stopped' });
  if (started.ownAudit) await audit.close();
}
