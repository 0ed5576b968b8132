/**
 * The test double: the production server, started in-process on 127.0.0.1 (port 0 unless asked)
 * with a temporary root and generated host keys (ed25519 and ecdsa-sha2-nistp256, so clients
 * without ed25519 such as JSch 0.1.5x can verify one), observable through its audit events. Every
 * instance owns its directory, keys, users and events; the one module-level thing is the list of
 * temporary roots an 'exit' listener removes if their tests never closed them (testing/roots.ts).
 */
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { ssh2 } from './ssh/ssh2.js';
import { startServer, auditFromConfig, type RunningServer } from './server.js';
import { validateConfig } from './config/load.js';
import type { ConfigInput } from './config/schema.js';
import { EventLog, DEFAULT_WAIT_FOR_TIMEOUT_MS } from './audit/memory-sink.js';
import { describeHostKey, parseAuthorizedKey } from './parse/keys.js';
import type { HostKey } from './ssh/host-keys.js';
import { RootFiles, closedError } from './testing/files.js';
import { checkFixtures, writeFixtures, type FixtureTree } from './testing/fixtures.js';
import { temporaryRoot } from './testing/roots.js';
import { FaultInjector, type FaultOptions, type FaultOp, type Faults } from './testing/faults.js';
import type { StatusName } from './errors.js';
import type { Clock } from './sftp/token-bucket.js';

export type { FixtureTree, FixtureValue } from './testing/fixtures.js';
export type { Permission } from './folders/rules.js';
export type { AuditRecordOf, WaitForOptions } from './audit/memory-sink.js';
export { DEFAULT_WAIT_FOR_TIMEOUT_MS };
export type { Clock } from './sftp/token-bucket.js';

/** A user as a config file holds one: the options below that mean the same take its types. */
type ConfigUser = NonNullable<ConfigInput['users']>[number];

/** Options passed to the config as they are, when given. */
const AS_IN_CONFIG = ['readOnly', 'atomicUploads', 'bandwidth', 'quota', 'disabled', 'folders', 'expiresAt', 'umask', 'startDirectory'] as const;

export interface TestUserOptions {
  username?: string;
  password?: string;
  /**
   * Fixture files for this user's root, by path inside it: a string or Buffer is a file's content;
   * a key ending in "/" or a null value makes a directory. A key that would leave the root
   * ("../x", "a/../../x") or any other value is an error naming the key.
   */
  files?: FixtureTree;
  /** Use an existing directory instead of a temporary one. */
  root?: string;
  readOnly?: boolean;
  umask?: string;
  /** New uploads staged under a hidden name until closed (default true, as in a config file). */
  atomicUploads?: boolean;
  /** Bytes per second over all this user's sessions, as in a config file (`{ uploadBytesPerSecond: '1MiB' }`). */
  bandwidth?: ConfigUser['bandwidth'];
  /** Per-folder permissions, as in a config file: { '/inbox': ['list', 'upload'], '/outbox': ['list', 'download'] }. */
  folders?: ConfigUser['folders'];
  /** Bytes and files this user's root may hold, as in a config file (`{ bytes: 10_000_000, files: 100 }`). */
  quota?: ConfigUser['quota'];
  /** Logins refused with auth.failure reason "account-disabled" (as in a config file). */
  disabled?: ConfigUser['disabled'];
  /** Logins refused from then on: "2027-01-31" or a date-time with a zone (as in a config file). */
  expiresAt?: ConfigUser['expiresAt'];
  startDirectory?: string;
  /** Extra authorized_keys lines for this user, besides the generated ed25519 key (`privateKey`). */
  authorizedKeys?: string[];
}

export interface TestServerOptions extends TestUserOptions {
  /** Several users; the first one is the default (`username`, `password`, …). */
  users?: TestUserOptions[];
  /** Any other server option (limits, log, …), as in a config file. */
  config?: Omit<ConfigInput, 'users' | 'listen'>;
  /** Port to listen on, on 127.0.0.1 (default 0: a free port, which `port` then tells). */
  port?: number;
  /** Default timeout of `events.waitFor` for this instance (default DEFAULT_WAIT_FOR_TIMEOUT_MS, 1500). */
  waitForTimeoutMs?: number;
  /**
   * Sweep the roots at start for staging files of atomic uploads an earlier, crashed server left
   * (default false: a test's roots are its own and fresh, and a sweep reads every root, including
   * ones a test checks are never read).
   */
  sweepStaged?: boolean;
  /**
   * The clock bandwidth limits wait on (`bandwidth`, `limits.bandwidth`): a test can run a limited
   * transfer in simulated time and check the rate without measuring wall-clock time.
   */
  bandwidthClock?: Clock;
}

export interface TestUser {
  readonly username: string;
  readonly password: string;
  /** OpenSSH-format private key (authorised for this user). */
  readonly privateKey: string;
  readonly publicKey: string;
  /** Host path of the user's root. */
  readonly root: string;
}

export interface ConnectOptions {
  host: string;
  port: number;
  username: string;
  password: string;
  /** Accepts only this server's host keys. */
  hostVerifier: (key: Buffer) => boolean;
}

export interface TestHostKey {
  /** Key type as on the wire: 'ssh-ed25519' or 'ecdsa-sha2-nistp256'. */
  readonly type: string;
  readonly fingerprint: string;
  /** OpenSSH public key line: `type base64`. */
  readonly publicKey: string;
}

export interface TestServer extends TestUser, AsyncDisposable {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** The ed25519 host key's fingerprint (`SHA256:…`). */
  readonly hostKeyFingerprint: string;
  /** Every host key the server offers: ed25519 first, then ecdsa-sha2-nistp256. */
  readonly hostKeys: readonly TestHostKey[];
  /**
   * known_hosts lines for OpenSSH clients, one per host key, joined by "\n":
   * `[127.0.0.1]:port ssh-ed25519 AAAA…` and `[127.0.0.1]:port ecdsa-sha2-nistp256 AAAA…`.
   */
  readonly knownHosts: string;
  readonly users: readonly TestUser[];
  /** Options for ssh2's Client#connect and ssh2-sftp-client's connect(). */
  readonly connectOptions: ConnectOptions;
  /** This instance's audit events: an array (`all`), an async iterable, and waitFor(). */
  readonly events: EventLog;
  readonly faults: Faults;
  /**
   * Helpers by virtual path, through the jail. Errors name the virtual path and code
   * ("ENOENT: no such file or directory, readFile '/missing.txt'"); after close() every helper
   * fails with "test server closed".
   */
  readFile(path: string, user?: string): Promise<Buffer>;
  writeFile(path: string, data: string | Buffer, user?: string): Promise<void>;
  exists(path: string, user?: string): Promise<boolean>;
  /** Sorted virtual paths under the root; directories end with "/". */
  tree(user?: string): Promise<string[]>;
  failNext(op: FaultOp, status: StatusName, opts?: FaultOptions): void;
  readonly server: RunningServer;
  close(): Promise<void>;
}

/** A fresh host key of one type, as the server takes it and as clients are told it. */
function generatedHostKey(type: 'ed25519' | 'ecdsa'): { key: HostKey; info: TestHostKey; blob: Buffer } {
  const pair = type === 'ecdsa' ? ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }) : ssh2.utils.generateKeyPairSync('ed25519');
  const info = describeHostKey(pair.private);
  if (info instanceof Error) throw info;
  const pub = parseAuthorizedKey(pair.public);
  if (pub instanceof Error) throw pub;
  return {
    key: { ...info, pem: Buffer.from(pair.private), generated: true },
    info: { type: pub.type, fingerprint: pub.fingerprint, publicKey: pair.public.split(' ').slice(0, 2).join(' ') },
    blob: pub.blob,
  };
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    return await start(opts, cleanups);
  } catch (e) {
    // A failed start leaves no temporary root behind.
    for (const c of cleanups) await c().catch(() => undefined);
    throw e;
  }
}

/** Checks what can be checked before anything is created: a mistake leaves nothing behind. */
function checkOptions(opts: TestServerOptions, userOpts: readonly TestUserOptions[]): void {
  const port = opts.port;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new TypeError(`port must be an integer from 0 to 65535 (0: any free port), got ${String(port)}`);
  }
  for (const [i, u] of userOpts.entries()) {
    if (u.files !== undefined) checkFixtures(u.files, opts.users?.length ? `users[${i}].files` : 'files');
  }
}

/** The listener's failure, naming the port the test asked for. */
function listenError(e: unknown, port: number): unknown {
  const { code, syscall } = e as { code?: unknown; syscall?: unknown };
  if (syscall !== 'listen') return e;
  if (code === 'EADDRINUSE') return Object.assign(new Error(`port ${port} on 127.0.0.1 is already in use (EADDRINUSE); leave port out (or 0) for a free one`, { cause: e }), { code });
  if (code === 'EACCES') return Object.assign(new Error(`port ${port} on 127.0.0.1 needs privileges this process lacks (EACCES); leave port out (or 0) for a free one`, { cause: e }), { code });
  return e;
}

async function start(opts: TestServerOptions, cleanups: (() => Promise<void>)[]): Promise<TestServer> {
  const userOpts = opts.users?.length ? opts.users : [opts];
  checkOptions(opts, userOpts);
  const events = new EventLog({ waitForTimeoutMs: opts.waitForTimeoutMs });
  const users: TestUser[] = [];
  const files = new Map<string, RootFiles>();
  for (const [i, u] of userOpts.entries()) {
    let root = u.root;
    if (!root) {
      const t = await temporaryRoot();
      cleanups.push(() => t.remove());
      root = t.path;
    } else {
      // The helpers open it now (the server would have made it anyway).
      await mkdir(root, { recursive: true });
    }
    const helpers = new RootFiles(root);
    // Closed before the roots are removed (cleanups run in order).
    cleanups.unshift(() => helpers.close());
    if (u.files) await writeFixtures(helpers, u.files as FixtureTree);
    const pair = ssh2.utils.generateKeyPairSync('ed25519');
    users.push({
      username: u.username ?? (i === 0 ? 'tester' : `tester${i + 1}`),
      // Starts with a letter: a leading "-" would read as an option on many command lines.
      password: u.password ?? `p${randomBytes(12).toString('base64url')}`,
      privateKey: pair.private,
      publicKey: pair.public,
      root,
    });
    if (files.has(users[i]!.username)) throw new TypeError(`two users are named "${users[i]!.username}"`);
    files.set(users[i]!.username, helpers);
  }
  const hostKeys = [generatedHostKey('ed25519'), generatedHostKey('ecdsa')];
  // Hooks without a spoolDir spool into a temporary folder of this instance, not the working directory.
  let spoolDir = opts.config?.spoolDir;
  if (spoolDir === undefined && opts.config?.hooks?.length) {
    const t = await temporaryRoot();
    cleanups.push(() => t.remove());
    spoolDir = t.path;
  }

  const config = validateConfig(
    {
      passwordCost: 10,
      ...opts.config,
      // Tests fail logins on purpose from one address: no penalties unless a test asks for them.
      limits: { ...opts.config?.limits, penalty: { enabled: false, ...opts.config?.limits?.penalty } },
      log: { level: 'info', ...opts.config?.log },
      ...(spoolDir !== undefined ? { spoolDir } : {}),
      listen: { host: '127.0.0.1', port: opts.port ?? 0 },
      users: users.map((u, i) => {
        const o = userOpts[i]!;
        return {
          username: u.username,
          password: u.password,
          authorizedKeys: [u.publicKey, ...(o.authorizedKeys ?? [])],
          root: u.root,
          ...Object.fromEntries(AS_IN_CONFIG.flatMap((k) => (o[k] !== undefined ? [[k, o[k]]] : []))),
        };
      }),
    },
    { baseDir: process.cwd() },
  );
  // Files named in config.log (file, xferlog, authLog) are written as in production; never stdout.
  const audit = auditFromConfig(config, { stdout: false });
  audit.addSink(events);
  cleanups.unshift(() => audit.close());
  const faults = new FaultInjector();
  const server = await startServer({ ...config, warnings: [] }, { hostKeys: hostKeys.map((k) => k.key), audit, sweepStaged: opts.sweepStaged ?? false, ...(opts.bandwidthClock ? { bandwidthClock: opts.bandwidthClock } : {}), wrapFileSystem: (fs) => faults.wrap(fs) }).catch(
    (e: unknown) => {
      throw listenError(e, config.listen.port);
    },
  );

  const main = users[0]!;
  let closed: Promise<void> | undefined;
  /** A helper's files, or why it cannot have them (closed, unknown user). */
  const filesOf = (helper: string, user?: string): RootFiles => {
    if (closed) throw closedError(helper);
    const f = files.get(user ?? main.username);
    if (!f) throw new TypeError(`no user "${user}" on this test server (have: ${[...files.keys()].join(', ')})`);
    return f;
  };
  /** A promise-returning helper rejects rather than throws. */
  const later = <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return fn();
    } catch (e) {
      return Promise.reject(e);
    }
  };
  const close = () =>
    (closed ??= (async () => {
      await server.close();
      // Before audit.close() closes every sink: pending waitFor calls learn why.
      await events.close('test server closed');
      for (const c of cleanups) await c().catch(() => undefined);
    })());

  return {
    ...main,
    host: server.host,
    port: server.port,
    url: `sftp://${main.username}@127.0.0.1:${server.port}`,
    hostKeyFingerprint: hostKeys[0]!.info.fingerprint,
    hostKeys: hostKeys.map((k) => k.info),
    knownHosts: hostKeys.map((k) => `[127.0.0.1]:${server.port} ${k.info.publicKey}`).join('\n'),
    users,
    connectOptions: {
      host: '127.0.0.1',
      port: server.port,
      username: main.username,
      password: main.password,
      hostVerifier: (key: Buffer) => Buffer.isBuffer(key) && hostKeys.some((k) => key.equals(k.blob)),
    },
    events,
    faults: faults.faults,
    server,
    readFile: (p, user) => later(() => filesOf('readFile', user).readFile(p)),
    writeFile: (p, data, user) => later(() => filesOf('writeFile', user).writeFile(p, data)),
    exists: (p, user) => later(() => filesOf('exists', user).exists(p)),
    tree: (user) => later(() => filesOf('tree', user).tree()),
    failNext: (op, status, o) => {
      if (closed) throw closedError('failNext');
      faults.failNext(op, status, o);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
