/**
 * Behind a real HAProxy: with `listen.proxyProtocol` on, the audit log shows the client's address
 * (not the proxy's) for logins, sessions and transfers, with PROXY v2 (`send-proxy-v2`) and v1
 * (`send-proxy`); HAProxy's SSH health check (LOCAL command) passes; in 'required' mode a direct
 * connection is refused and logged.
 *
 * Needs /usr/sbin/haproxy (Debian package `haproxy`): installed here when missing and running as
 * root, otherwise the test fails saying so.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
// Keys come from the patched ssh2: stock ssh2 1.17.0 writes 1 in 256 ed25519 keys it cannot parse back (ssh2 #1390).
import { ssh2 as patchedSsh2 } from '../../src/ssh/ssh2.js';
const { generateKeyPairSync } = patchedSsh2.utils;
import { startServer, type RunningServer } from '../../src/server.js';
import { validateConfig } from '../../src/config/load.js';
import type { AuditRecord } from '../../src/audit/events.js';

const HAPROXY = '/usr/sbin/haproxy';
const USER = 'proxied';
const PASSWORD = randomBytes(12).toString('base64url');

let dir: string;
let haproxy: ChildProcess | undefined;
let haproxyLog = '';
let hostPublic: Buffer;
const ports = { v2: 0, v1: 0, opt: 0 };

interface Instance {
  server: RunningServer;
  events: AuditRecord[];
  root: string;
}
let required: Instance;
let optional: Instance;

function ensureHaproxy(): void {
  if (existsSync(HAPROXY)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${HAPROXY} not found: install HAProxy (apt-get install haproxy) or run the tests as root (.ci/run installs it)`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'haproxy'], { env, encoding: 'utf8' });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, encoding: 'utf8' });
    r = install();
  }
  if (!existsSync(HAPROXY)) throw new Error(`could not install haproxy (apt-get exit ${r.status}): ${r.stderr || r.error?.message || ''}`);
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function startInstance(name: string, listen: Record<string, unknown>): Promise<Instance> {
  const root = join(dir, `root-${name}`);
  await mkdir(root, { recursive: true });
  const config = validateConfig(
    {
      serverName: `haproxy-${name}`,
      listen: { host: '127.0.0.1', port: 0, ...listen },
      hostKeys: ['keys/ssh_host_ed25519_key'],
      passwordCost: 10,
      log: { level: 'silent' },
      limits: { penalty: { enabled: false } },
      users: [{ username: USER, password: PASSWORD, root }],
    },
    { baseDir: dir },
  );
  const server = await startServer({ ...config, warnings: [] });
  const events: AuditRecord[] = [];
  server.audit.addSink({ write: (r) => void events.push(r) });
  return { server, events, root };
}

async function waitFor<T extends AuditRecord>(events: AuditRecord[], pred: (e: AuditRecord) => e is T, what: string, ms = 4000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = events.find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no audit event ${what}; got:\n${events.map((e) => JSON.stringify(e)).join('\n')}\nhaproxy:\n${haproxyLog}`);
    await sleep(25);
  }
}

/** A TCP connection from `localAddress` (so the client's address differs from the proxy's 127.0.0.1). */
async function tcp(port: number, localAddress?: string): Promise<Socket> {
  const sock = netConnect({ host: '127.0.0.1', port, noDelay: true, ...(localAddress ? { localAddress } : {}) });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  return sock;
}

/** Logs in over `sock`, uploads one file, closes; returns the client's local port. */
async function sftpUpload(sock: Socket, path: string, data: Buffer): Promise<number> {
  const localPort = sock.localPort!;
  const client = new ssh2.Client();
  // ssh2 may report a second error (e.g. "Connection lost before handshake" after the first):
  // the outcome is decided by the first; a later one must not crash the test process.
  client.on('error', () => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
  });
  client.connect({ sock, username: USER, password: PASSWORD, hostVerifier: (key: Buffer) => key.equals(hostPublic), readyTimeout: 5000 });
  await ready;
  const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s))));
  await new Promise<void>((resolve, reject) => sftp.writeFile(path, data, (err) => (err ? reject(err) : resolve())));
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  client.end();
  await closed;
  return localPort;
}

/** A direct SSH attempt that must not get as far as 'ready'. */
async function sshRefused(sock: Socket): Promise<number> {
  const localPort = sock.localPort!;
  const client = new ssh2.Client();
  client.on('error', () => undefined); // see sftpUpload
  const outcome = new Promise<string>((resolve) => {
    client.once('ready', () => resolve('ready'));
    client.once('error', (e) => resolve(`error: ${e.message}`));
    client.once('close', () => resolve('close'));
  });
  client.connect({ sock, username: USER, password: PASSWORD, hostVerifier: () => true, readyTimeout: 5000 });
  const r = await outcome;
  client.end();
  expect(r).not.toBe('ready');
  return localPort;
}

async function haproxyStats(): Promise<Record<string, string>[]> {
  const sock = netConnect(join(dir, 'haproxy.sock'));
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.once('end', () => resolve());
    sock.once('error', reject);
    sock.write('show stat\n');
  });
  const [head, ...rows] = Buffer.concat(chunks).toString('utf8').trim().split('\n');
  const cols = (head ?? '').replace(/^# /, '').split(',');
  return rows.map((line) => Object.fromEntries(line.split(',').map((v, i) => [cols[i] ?? String(i), v])));
}

/**
 * The "backend sftp" section of contrib/haproxy/haproxy.cfg (balance, health check, send-proxy-v2),
 * pointed at one test instance with a fast check interval, so the documented example is what runs.
 */
async function contribBackend(name: string, port: number): Promise<string> {
  const text = await readFile(new URL('../../contrib/haproxy/haproxy.cfg', import.meta.url), 'utf8');
  const start = text.indexOf('\nbackend sftp\n');
  if (start < 0) throw new Error('contrib/haproxy/haproxy.cfg has no "backend sftp" section');
  const lines = text
    .slice(start + 1)
    .split('\n')
    .filter((l) => !/^\s*server\s/.test(l));
  lines[0] = `backend ${name}`;
  return `${lines.join('\n')}\n    server s1 127.0.0.1:${port} inter 200ms\n`;
}

async function haproxyConfig(reqPort: number, optPort: number): Promise<string> {
  return `global
    stats socket ${join(dir, 'haproxy.sock')} mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s

# PROXY v2 with the health check, exactly as in contrib/haproxy/haproxy.cfg.
frontend fe_v2
    bind 127.0.0.1:${ports.v2}
    default_backend be_v2
${await contribBackend('be_v2', reqPort)}
# PROXY v1 (text).
frontend fe_v1
    bind 127.0.0.1:${ports.v1}
    default_backend be_v1
backend be_v1
    server s1 127.0.0.1:${reqPort} send-proxy

# PROXY v2 to the instance in 'optional' mode.
frontend fe_opt
    bind 127.0.0.1:${ports.opt}
    default_backend be_opt
backend be_opt
    server s1 127.0.0.1:${optPort} send-proxy-v2
`;
}

beforeAll(async () => {
  ensureHaproxy();
  dir = await mkdtemp(join(tmpdir(), 'sftp-haproxy-'));
  const pair = generateKeyPairSync('ed25519');
  await mkdir(join(dir, 'keys'), { mode: 0o700 });
  await writeFile(join(dir, 'keys', 'ssh_host_ed25519_key'), pair.private, { mode: 0o600 });
  const parsed = ssh2.utils.parseKey(pair.public);
  if (parsed instanceof Error) throw parsed;
  hostPublic = parsed.getPublicSSH();

  // Only the proxy (127.0.0.1) may send headers to the 'required' instance; 127.0.0.2 is a client.
  required = await startInstance('required', { proxyProtocol: 'required', proxyTrusted: ['127.0.0.1/32'] });
  optional = await startInstance('optional', { proxyProtocol: 'optional' });

  ports.v2 = await freePort();
  ports.v1 = await freePort();
  ports.opt = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(cfg, await haproxyConfig(required.server.port, optional.server.port));
  // The example must stay valid; its "user"/"group" lines name an account only the Debian package creates.
  const contrib = join(dir, 'contrib-haproxy.cfg');
  const example = await readFile(fileURLToPath(new URL('../../contrib/haproxy/haproxy.cfg', import.meta.url)), 'utf8');
  await writeFile(contrib, example.replace(/^\s*(user|group)\s.*$/gm, ''));
  for (const file of [cfg, contrib]) {
    const check = spawnSync(HAPROXY, ['-c', '-f', file], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`haproxy -c rejected ${file}:\n${check.stdout}${check.stderr}`);
  }
  const proc = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy = proc;
  proc.stdout.on('data', (d: Buffer) => (haproxyLog += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (haproxyLog += d.toString()));
  const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`haproxy exited (${code}):\n${haproxyLog}`))));
  // Ready once every frontend accepts.
  const ready = (async () => {
    for (const p of Object.values(ports)) {
      for (let i = 0; ; i++) {
        const ok = await tcp(p).then(
          (s) => (s.destroy(), true),
          () => false,
        );
        if (ok) break;
        if (i > 100) throw new Error(`haproxy did not listen on ${p}:\n${haproxyLog}`);
        await sleep(20);
      }
    }
  })();
  await Promise.race([ready, exited]);
  exited.catch(() => undefined);
}, 180_000);

afterAll(async () => {
  if (haproxy && haproxy.exitCode === null) {
    const gone = new Promise<void>((r) => haproxy!.once('exit', () => r()));
    haproxy.kill('SIGTERM');
    await Promise.race([gone, sleep(2000).then(() => haproxy!.kill('SIGKILL'))]);
  }
  await required?.server.close();
  await optional?.server.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const isEvent =
  <E extends AuditRecord['event']>(event: E, remote: string) =>
  (e: AuditRecord): e is Extract<AuditRecord, { event: E }> =>
    e.event === event && e.remote === remote;

async function expectClientAddress(inst: Instance, remote: string, path: string, size: number) {
  const auth = await waitFor(inst.events, isEvent('auth.success', remote), `auth.success from ${remote}`);
  const open = await waitFor(inst.events, isEvent('session.open', remote), `session.open from ${remote}`);
  const transfer = await waitFor(inst.events, isEvent('transfer', remote), `transfer from ${remote}`);
  await waitFor(inst.events, isEvent('session.close', remote), `session.close from ${remote}`);
  expect(auth).toMatchObject({ user: USER, method: 'password' });
  expect(open.sessionId).toBe(auth.sessionId);
  expect(transfer).toMatchObject({ sessionId: auth.sessionId, user: USER, path, direction: 'upload', bytesWritten: size, status: 'complete' });
  // Nothing of this session was logged under the proxy's address.
  for (const e of inst.events) if ('sessionId' in e && e.sessionId === auth.sessionId) expect(e.remote).toBe(remote);
}

describe('behind HAProxy', () => {
  it('send-proxy-v2: auth, session and transfer records carry the client address (127.0.0.2:port)', async () => {
    const data = randomBytes(100_000);
    const port = await sftpUpload(await tcp(ports.v2, '127.0.0.2'), '/v2.bin', data);
    await expectClientAddress(required, `127.0.0.2:${port}`, '/v2.bin', data.length);
    expect((await readFile(join(required.root, 'v2.bin'))).equals(data)).toBe(true);
  });

  it('send-proxy (v1): the same, from the text header', async () => {
    const data = randomBytes(5_000);
    const port = await sftpUpload(await tcp(ports.v1, '127.0.0.2'), '/v1.bin', data);
    await expectClientAddress(required, `127.0.0.2:${port}`, '/v1.bin', data.length);
  });

  it("contrib/haproxy/haproxy.cfg's SSH health check (LOCAL header, expects SSH-2.0-) passes", async () => {
    const deadline = Date.now() + 5000;
    let row: Record<string, string> | undefined;
    for (;;) {
      row = (await haproxyStats()).find((r) => r.pxname === 'be_v2' && r.svname === 's1');
      if (row?.check_status === 'L7OK' || Date.now() > deadline) break;
      await sleep(100);
    }
    expect(row, haproxyLog).toMatchObject({ status: 'UP', check_status: 'L7OK' });
    // Checks are not refused: a LOCAL header means "use the proxy's own address".
    expect(required.events.filter((e) => e.event === 'request.refused' && e.remote.startsWith('127.0.0.1:'))).toEqual([]);
  });

  it("'required' mode: a direct connection without a header is refused and logged", async () => {
    const port = await sshRefused(await tcp(required.server.port));
    const refused = await waitFor(required.events, isEvent('request.refused', `127.0.0.1:${port}`), 'request.refused for the direct connection');
    expect(refused).toMatchObject({ what: 'connection', why: 'proxy-protocol', detail: expect.stringMatching(/PROXY/) });
    expect(required.events.some((e) => e.event === 'auth.success' && e.remote === `127.0.0.1:${port}`)).toBe(false);
  });

  it("'required' mode: a peer outside listen.proxyTrusted is refused and logged", async () => {
    const port = await sshRefused(await tcp(required.server.port, '127.0.0.2'));
    const refused = await waitFor(required.events, isEvent('request.refused', `127.0.0.2:${port}`), 'request.refused for the untrusted peer');
    expect(refused).toMatchObject({ what: 'connection', why: 'proxy-untrusted' });
  });

  it("'optional' mode: proxied clients get their own address, direct clients still log in", async () => {
    const data = randomBytes(20_000);
    const viaProxy = await sftpUpload(await tcp(ports.opt, '127.0.0.2'), '/proxied.bin', data);
    await expectClientAddress(optional, `127.0.0.2:${viaProxy}`, '/proxied.bin', data.length);
    const direct = await sftpUpload(await tcp(optional.server.port), '/direct.bin', data);
    await expectClientAddress(optional, `127.0.0.1:${direct}`, '/direct.bin', data.length);
  });
});
