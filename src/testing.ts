/**
 * The test double: the production server, started in-process on 127.0.0.1:0 with a temporary root
 * and generated host keys (ed25519 and ecdsa-sha2-nistp256, so clients without ed25519 such as
 * JSch 0.1.5x can verify one), observable through its audit events. Nothing here is module-global:
 * every instance owns its directory, keys, users and events.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { dirname, join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { dir as tmpDir } from 'tmp-promise';
import ssh2 from 'ssh2';
import { startServer, auditFromConfig, type RunningServer } from './server.js';
import { validateConfig } from './config/load.js';
import type { ConfigInput } from './config/schema.js';
import { EventLog } from './audit/memory-sink.js';
import { describeHostKey, parseAuthorizedKey } from './ssh/keys.js';
import type { HostKey } from './ssh/host-keys.js';
import { RootFiles } from './testing/files.js';
import { FaultInjector, type FaultOptions, type FaultOp, type Faults } from './testing/faults.js';
import type { StatusName } from './errors.js';

export type FixtureTree = Record<string, string | Buffer | null>;

export interface TestUserOptions {
  username?: string;
  password?: string;
  /** Fixture files for this user's root: "dir/" or a null value makes a directory. */
  files?: FixtureTree;
  /** Use an existing directory instead of a temporary one. */
  root?: string;
  readOnly?: boolean;
  umask?: string;
  startDirectory?: string;
  /** Extra authorized_keys lines for this user, besides the generated ed25519 key (`privateKey`). */
  authorizedKeys?: string[];
}

export interface TestServerOptions extends TestUserOptions {
  /** Several users; the first one is the default (`username`, `password`, …). */
  users?: TestUserOptions[];
  /** Any other server option (limits, log, …), as in a config file. */
  config?: Omit<ConfigInput, 'users' | 'listen'>;
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
  readFile(path: string, user?: string): Promise<Buffer>;
  writeFile(path: string, data: string | Buffer, user?: string): Promise<void>;
  exists(path: string, user?: string): Promise<boolean>;
  /** Sorted virtual paths under the root; directories end with "/". */
  tree(user?: string): Promise<string[]>;
  failNext(op: FaultOp, status: StatusName, opts?: FaultOptions): void;
  readonly server: RunningServer;
  close(): Promise<void>;
}

function removeDeep(path: string): Promise<void> {
  return new Promise((resolve) => execFile('rm', ['-rf', '--one-file-system', path], () => resolve()));
}

/** Maps a virtual path onto the root lexically (fixtures are the test author's own, not hostile). */
function hostPath(root: string, vpath: string): string {
  return join(root, posix.normalize('/' + vpath));
}

async function writeTree(root: string, files: FixtureTree): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const p = hostPath(root, name);
    if (content === null || name.endsWith('/')) {
      await mkdir(p, { recursive: true });
      continue;
    }
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, content);
  }
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

async function start(opts: TestServerOptions, cleanups: (() => Promise<void>)[]): Promise<TestServer> {
  const userOpts = opts.users?.length ? opts.users : [opts];
  const users: TestUser[] = [];
  for (const [i, u] of userOpts.entries()) {
    let root = u.root;
    if (!root) {
      const t = await tmpDir({ unsafeCleanup: true, prefix: 'sftp-chroot-test-' });
      const path = t.path;
      // Node's recursive rm gives up on trees deeper than PATH_MAX (a client can make one); rm(1) walks with *at calls.
      cleanups.push(() => t.cleanup().catch(() => removeDeep(path)));
      root = t.path;
    }
    if (u.files) await writeTree(root, u.files);
    const pair = ssh2.utils.generateKeyPairSync('ed25519');
    users.push({
      username: u.username ?? (i === 0 ? 'tester' : `tester${i + 1}`),
      password: u.password ?? randomBytes(12).toString('base64url'),
      privateKey: pair.private,
      publicKey: pair.public,
      root,
    });
  }
  const hostKeys = [generatedHostKey('ed25519'), generatedHostKey('ecdsa')];

  const config = validateConfig(
    {
      passwordCost: 10,
      ...opts.config,
      // Tests fail logins on purpose from one address: no penalties unless a test asks for them.
      limits: { ...opts.config?.limits, penalty: { enabled: false, ...opts.config?.limits?.penalty } },
      log: { level: 'info', ...opts.config?.log },
      listen: { host: '127.0.0.1', port: 0 },
      users: users.map((u, i) => {
        const o = userOpts[i]!;
        return {
          username: u.username,
          password: u.password,
          authorizedKeys: [u.publicKey, ...(o.authorizedKeys ?? [])],
          root: u.root,
          ...(o.readOnly !== undefined ? { readOnly: o.readOnly } : {}),
          ...(o.umask !== undefined ? { umask: o.umask } : {}),
          ...(o.startDirectory !== undefined ? { startDirectory: o.startDirectory } : {}),
        };
      }),
    },
    { baseDir: process.cwd() },
  );
  const events = new EventLog();
  // Files named in config.log (file, xferlog, authLog) are written as in production; never stdout.
  const audit = auditFromConfig(config, { stdout: false });
  audit.addSink(events);
  const faults = new FaultInjector();
  const server = await startServer({ ...config, warnings: [] }, { hostKeys: hostKeys.map((k) => k.key), audit, wrapFileSystem: (fs) => faults.wrap(fs) });

  const main = users[0]!;
  const files = new Map(users.map((u) => [u.username, new RootFiles(u.root)]));
  const filesOf = (user?: string): RootFiles => {
    const f = files.get(user ?? main.username);
    if (!f) throw new TypeError(`no user "${user}" on this test server (have: ${[...files.keys()].join(', ')})`);
    return f;
  };
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      await server.close();
      await audit.close();
      await events.close();
      for (const f of files.values()) await f.close();
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
    readFile: (p, user) => filesOf(user).readFile(p),
    writeFile: (p, data, user) => filesOf(user).writeFile(p, data),
    exists: (p, user) => filesOf(user).exists(p),
    tree: (user) => filesOf(user).tree(),
    failNext: (op, status, o) => faults.failNext(op, status, o),
    close,
    [Symbol.asyncDispose]: close,
  };
}
