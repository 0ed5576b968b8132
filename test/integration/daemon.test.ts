import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, mkdir, readFile, stat } from 'node:fs/promises';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { startDaemon, runCli, type Daemon } from '../helpers/cli.js';
import { clientFiles, sftpBatch, sftpPassword, sshOptions } from '../helpers/openssh.js';
import { connect } from '../helpers/sftp-client.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sftp-chroot-daemon-'));
  await runCli(['keygen', '--out', join(dir, 'keys')], dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const hostPub = () => readFileSync(join(dir, 'keys/ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
const target = (d: Daemon, username: string, password: string, privateKey = '') => ({ port: d.port, username, password, privateKey, knownHosts: `[127.0.0.1]:${d.port} ${hostPub()}` });
const records = (d: Daemon) => d.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
};

async function daemon(name: string, config: Record<string, unknown>): Promise<{ d: Daemon; file: string }> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify({ hostKeys: ['keys/ssh_host_ed25519_key'], listen: { host: '127.0.0.1', port: 0 }, passwordCost: 10, ...config }));
  return { d: await startDaemon(['--config', file], dir), file };
}

/** One SSH connection trying passwords one after another (ssh2 authHandler), returning how many it got to try. */
function tryPasswords(port: number, username: string, passwords: string[]): Promise<{ tried: number; error: string }> {
  return new Promise((resolve) => {
    let tried = 0;
    const c = new ssh2.Client();
    c.on('error', (e) => resolve({ tried, error: e.message }));
    c.on('ready', () => {
      c.end();
      resolve({ tried, error: 'logged in' });
    });
    c.on('close', () => resolve({ tried, error: 'closed' }));
    c.connect({
      host: '127.0.0.1',
      port,
      username,
      authHandler: (_methods, _partial, next) => {
        if (tried >= passwords.length) return next(false as never);
        next({ type: 'password', username, password: passwords[tried++]! });
      },
    });
  });
}

describe('the operator daemon', () => {
  it('a config migrated from the sshd "Match group sftponly / ChrootDirectory /home/%u" recipe serves three users in roots created at start', async () => {
    const home = join(dir, 'home');
    const { d } = await daemon('migrated', {
      groups: { sftponly: { root: `${home}/%u`, createRoot: '0750', umask: '0027' } },
      users: ['ann', 'ben', 'cat'].map((u) => ({ username: u, password: `${u}-pw`, group: 'sftponly' })),
    });
    const local = join(dir, 'local-644.txt');
    await writeFile(local, 'hi', { mode: 0o644 });
    try {
      for (const u of ['ann', 'ben', 'cat']) {
        expect((await stat(join(home, u))).mode & 0o777).toBe(0o750);
        const r = await sftpPassword(target(d, u, `${u}-pw`), `${u}-pw`, [`put ${local} ${u}.txt`, 'ls /']);
        expect(r.stdout).toContain(`${u}.txt`);
        for (const other of ['ann', 'ben', 'cat'].filter((x) => x !== u)) expect(r.stdout).not.toContain(`${other}.txt`);
        expect((await stat(join(home, u, `${u}.txt`))).mode & 0o777).toBe(0o640); // umask 0027
      }
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('seven wrong passwords on one connection: it ends after the sixth, and the address is then penalised', async () => {
    await mkdir(join(dir, 'r-pen'), { recursive: true });
    const { d } = await daemon('penalty', {
      users: [{ username: 'pat', password: 'right', root: 'r-pen' }],
      limits: { maxAuthTries: 6, penalty: { threshold: 8, authFailSeconds: 30 } },
    });
    try {
      const r = await tryPasswords(d.port, 'pat', Array.from({ length: 7 }, (_, i) => `wrong-${i}`));
      expect(r.tried).toBe(6);
      await until(() => records(d).some((e) => e.reason === 'too-many-attempts'));
      expect(records(d).filter((e) => e.event === 'auth.failure' && e.reason === 'bad-password')).toHaveLength(6);
      // Two more failures cross the threshold of 8: the address is refused for 30 s, even with the right password.
      await tryPasswords(d.port, 'pat', ['wrong-7', 'wrong-8']);
      await until(() => records(d).some((e) => e.event === 'request.refused' && e.why === 'penalty'));
      const after = await tryPasswords(d.port, 'pat', ['right']);
      expect(after.error).not.toBe('logged in');
      await until(() => records(d).filter((e) => e.event === 'request.refused' && e.why === 'penalty').length >= 2);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('a connection that never sends a byte is closed after the login grace time', async () => {
    await mkdir(join(dir, 'r-grace'), { recursive: true });
    const { d } = await daemon('grace', { users: [{ username: 'g', password: 'x', root: 'r-grace' }], limits: { loginGraceSeconds: 1 } });
    try {
      const started = Date.now();
      const closedAfter = await new Promise<number>((resolve) => {
        const sock = createConnection({ host: '127.0.0.1', port: d.port });
        sock.on('data', () => undefined);
        sock.on('error', () => undefined);
        sock.on('close', () => resolve(Date.now() - started));
      });
      expect(closedAfter).toBeGreaterThanOrEqual(900);
      expect(closedAfter).toBeLessThan(5000);
      await until(() => records(d).some((e) => e.why === 'login-grace-exceeded'));
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('a client that requests data but never reads it cannot grow the server beyond the in-flight cap', async () => {
    await mkdir(join(dir, 'r-flood'), { recursive: true });
    await writeFile(join(dir, 'r-flood/big.bin'), randomBytes(32 * 1024 * 1024));
    const { d } = await daemon('flood', {
      users: [{ username: 'f', password: 'x', root: 'r-flood' }],
      limits: { maxInflightBytesPerSession: 2 * 1024 * 1024, maxRequestsInFlight: 100000 },
    });
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d.child.pid}/status`, 'utf8'))![1]) * 1024;
    try {
      const c = await connect({ host: '127.0.0.1', port: d.port, username: 'f', password: 'x', hostVerifier: () => true });
      const handle = await c.open('/big.bin', 1);
      const before = rss();
      // 2,000 reads of 255 KiB = 500 MB asked for; then stop reading the socket.
      const sock = (c.conn as unknown as { _sock: import('node:net').Socket })._sock;
      for (let i = 0; i < 2000; i++) c.raw.read(handle, Buffer.alloc(261120), 0, 261120, (i % 120) * 261120, () => undefined);
      sock.pause();
      await new Promise((r) => setTimeout(r, 2500));
      const grown = rss() - before;
      expect(grown).toBeLessThan(96 * 1024 * 1024);
      sock.destroy();
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('SIGHUP adds a user while a transfer in progress continues; a broken config changes nothing', async () => {
    await mkdir(join(dir, 'r-h1'), { recursive: true });
    await mkdir(join(dir, 'r-h2'), { recursive: true });
    const big = randomBytes(96 * 1024 * 1024);
    await writeFile(join(dir, 'r-h1/big.bin'), big);
    const { d, file } = await daemon('reload', { users: [{ username: 'h1', password: 'one', root: 'r-h1' }] });
    try {
      const c = await connect({ host: '127.0.0.1', port: d.port, username: 'h1', password: 'one', hostVerifier: () => true });
      const download = c.readFile('/big.bin');
      const cfg = JSON.parse(await readFile(file, 'utf8')) as { users: unknown[] };
      cfg.users.push({ username: 'h2', password: 'two', root: 'r-h2' });
      await writeFile(file, JSON.stringify(cfg));
      d.child.kill('SIGHUP');
      await until(() => records(d).some((e) => e.event === 'server.reload'));
      const r = await sftpPassword(target(d, 'h2', 'two'), 'two', ['pwd']);
      expect(r.stdout).toContain('Remote working directory: /');
      expect((await download).equals(big)).toBe(true);
      await c.end();

      await writeFile(file, '{ "users": [ { "username": "h1" } ], "typo": 1 }');
      d.child.kill('SIGHUP');
      await until(() => d.stderr().includes('reload refused'));
      expect(d.stderr()).toMatch(/typo/);
      // The JSON log is batched (up to 100 ms): wait for the record rather than read once.
      await until(() => records(d).some((e) => e.event === 'server.warning' && String(e.message).includes('reload refused')));
      const still = await sftpPassword(target(d, 'h2', 'two'), 'two', ['pwd']);
      expect(still.stdout).toContain('Remote working directory: /');
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('SIGTERM during an upload lets it finish within the grace time, then exits 0', async () => {
    await mkdir(join(dir, 'r-term'), { recursive: true });
    const local = join(dir, 'up-term.bin');
    const data = randomBytes(128 * 1024 * 1024);
    await writeFile(local, data);
    const { d } = await daemon('term', { users: [{ username: 't', password: 'x', root: 'r-term' }], shutdownGraceSeconds: 20 });
    const keyless = target(d, 't', 'x');
    const files = await clientFiles(keyless);
    try {
      const child = spawn('sshpass', ['-e', 'sftp', '-o', `UserKnownHostsFile=${files.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PubkeyAuthentication=no', '-F', '/dev/null', '-P', String(d.port), 't@127.0.0.1'], {
        env: { ...process.env, SSHPASS: 'x' },
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      child.stdin.end(`put ${local} /up.bin\n`);
      let clientErr = '';
      child.stderr.on('data', (b: Buffer) => (clientErr += b.toString()));
      const clientDone = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      await until(() => existsSync(join(dir, 'r-term/up.bin')) && statSync(join(dir, 'r-term/up.bin')).size > 1024 * 1024);
      const exit = d.stop('SIGTERM');
      // On failure, say what the client and the daemon saw: a bare exit code explains nothing.
      expect(await clientDone, `sftp: ${clientErr}\ndaemon: ${d.stderr()}\n${d.stdout().split('\n').filter((l) => !l.includes('transfer.progress')).slice(-8).join('\n')}`).toBe(0);
      expect(await exit).toBe(0);
      expect((await readFile(join(dir, 'r-term/up.bin'))).equals(data)).toBe(true);
      const t = records(d).find((e) => e.event === 'transfer' && e.path === '/up.bin');
      expect(t).toMatchObject({ status: 'complete', bytesWritten: data.length });
    } finally {
      await files.cleanup();
      d.child.kill('SIGKILL');
    }
  });

  it('/healthz answers 200 and /metrics parses as Prometheus text matching a scripted session', async () => {
    await mkdir(join(dir, 'r-m'), { recursive: true });
    await writeFile(join(dir, 'r-m/f.bin'), randomBytes(5000));
    const { d } = await daemon('metrics', { users: [{ username: 'm', password: 'x', root: 'r-m' }], admin: { listen: { host: '127.0.0.1', port: 0 } } });
    try {
      const adminPort = Number(/admin http:\/\/127\.0\.0\.1:(\d+)/.exec(d.stderr())?.[1]);
      expect(adminPort).toBeGreaterThan(0);
      const health = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
      expect(health.status).toBe(200);
      await sftpPassword(target(d, 'm', 'wrong'), 'wrong', ['pwd']);
      await sftpPassword(target(d, 'm', 'x'), 'x', ['get /f.bin /dev/null', 'put /etc/hostname /h.txt', 'mkdir /dd']);
      await until(() => records(d).filter((e) => e.event === 'session.close').length >= 1);
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      const metric = (name: string, labels: string) => {
        const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
        return line ? Number(line.split(' ').at(-1)) : 0;
      };
      for (const line of text.split('\n')) if (line && !line.startsWith('#')) expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? -?[0-9.e+-]+|NaN$/);
      expect(metric('sftp_logins_total', 'outcome="success"')).toBe(1);
      expect(metric('sftp_logins_total', 'outcome="bad-password"')).toBeGreaterThanOrEqual(1);
      expect(metric('sftp_bytes_total', 'direction="download"')).toBe(5000);
      expect(metric('sftp_bytes_total', 'direction="upload"')).toBe(readFileSync('/etc/hostname').length);
      expect(metric('sftp_files_total', 'direction="download",status="complete"')).toBe(1);
      expect(metric('sftp_mutations_total', 'kind="mkdir",ok="true"')).toBe(1);
      expect(metric('sftp_sessions', '')).toBe(0);
      expect(text).toMatch(/sftp_request_duration_seconds_count\{request="open"\} 2/);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});

describe('per-user start directory', () => {
  it('startDirectory is created inside the root and is where sftp lands; relative paths start there', async () => {
    await mkdir(join(dir, 'r-start'), { recursive: true });
    const { d } = await daemon('start', { users: [{ username: 's', password: 'x', root: 'r-start', startDirectory: '/upload/incoming' }] });
    try {
      const r = await sftpPassword(target(d, 's', 'x'), 'x', ['pwd', 'put /etc/hostname here.txt', 'cd /', 'pwd']);
      expect(r.stdout).toContain('Remote working directory: /upload/incoming');
      expect(existsSync(join(dir, 'r-start/upload/incoming/here.txt'))).toBe(true);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('denyRequests refuses the named requests and logs the refusal', async () => {
    await mkdir(join(dir, 'r-deny'), { recursive: true });
    await writeFile(join(dir, 'r-deny/keep.txt'), 'k');
    const { d } = await daemon('deny', { users: [{ username: 'n', password: 'x', root: 'r-deny', denyRequests: ['remove', 'rmdir'] }] });
    try {
      const r = await sftpPassword(target(d, 'n', 'x'), 'x', ['rm keep.txt', 'mkdir made']);
      expect(r.stderr).toMatch(/Permission denied/);
      expect(existsSync(join(dir, 'r-deny/keep.txt'))).toBe(true);
      expect(existsSync(join(dir, 'r-deny/made'))).toBe(true);
      await until(() => records(d).some((e) => e.event === 'request.refused' && e.why === 'policy' && String(e.detail).includes('denyRequests')));
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('allowFrom refuses a login from an address outside the list', async () => {
    await mkdir(join(dir, 'r-allow'), { recursive: true });
    const { d } = await daemon('allow', { users: [{ username: 'a', password: 'x', root: 'r-allow', allowFrom: ['192.0.2.0/24'] }] });
    try {
      const r = await sftpPassword(target(d, 'a', 'x'), 'x', ['pwd']);
      expect(r.stdout).not.toContain('Remote working directory');
      await until(() => records(d).some((e) => e.event === 'auth.failure' && e.reason === 'source-not-allowed'));
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});
