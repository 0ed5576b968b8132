/**
 * `sftp-chroot test-server` (src/cli/test-server.ts), the test double for other languages, run as
 * the built CLI: the JSON line's credentials work, audit records stream on stdout, --files seeds the
 * root, stdin EOF and signals stop it cleanly, bad input fails with the documented exit codes, and
 * the pytest and JUnit 5 examples (examples/pytest, examples/junit5) pass against it.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import SftpClient from 'ssh2-sftp-client';
import { CLI, runCli } from '../helpers/cli.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));

interface Info {
  host: string;
  port: number;
  user: string;
  username: string;
  password: string;
  privateKeyPath: string;
  publicKey: string;
  knownHosts: string;
  knownHostsPath: string;
  hostKeyFingerprint: string;
  root: string;
  url: string;
}
type Rec = Record<string, unknown>;

interface Running {
  child: ChildProcessWithoutNullStreams;
  info: Info;
  records: () => Rec[];
  stderr: () => string;
  exited: Promise<number | null>;
}

const children = new Set<Running>();
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sftp-chroot-test-server-cli-'));
});
afterEach(async () => {
  // A test that failed half-way still stops its server, so it removes its root.
  for (const r of children) {
    r.child.stdin.end();
    await r.exited;
  }
  children.clear();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts `test-server ARGS` and resolves once its first stdout line (the JSON object) arrived. */
function startCli(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [CLI, 'test-server', ...args], { cwd: dir, stdio: 'pipe' });
  const lines: string[] = [];
  let partial = '';
  let err = '';
  let started = false;
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no JSON line within 15 s; stderr: ${err}`));
    }, 15_000);
    child.stdout.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
      if (!started && lines.length > 0) {
        started = true;
        clearTimeout(timer);
        const running: Running = {
          child,
          info: JSON.parse(lines[0]!) as Info,
          records: () => lines.slice(1).map((l) => JSON.parse(l) as Rec),
          stderr: () => err,
          exited,
        };
        children.add(running);
        resolve(running);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before its JSON line; stderr: ${err}`));
    });
  });
}

/** The first streamed record matching, waiting up to a bound for it to arrive. */
async function record(r: Running, match: (rec: Rec) => boolean): Promise<Rec> {
  const end = Date.now() + 5000;
  for (;;) {
    const found = r.records().find(match);
    if (found) return found;
    if (Date.now() > end) throw new Error(`no matching record; saw ${r.records().map((x) => x.event).join(', ')}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

async function stopped(r: Running, how: 'stdin' | NodeJS.Signals): Promise<number | null> {
  if (how === 'stdin') r.child.stdin.end();
  else r.child.kill(how);
  const code = await r.exited;
  children.delete(r);
  return code;
}

/** ssh2's hostVerifier accepting only the keys of the JSON line's knownHosts. */
function verifierFor(info: Info) {
  const blobs = info.knownHosts.split('\n').map((l) => Buffer.from(l.split(' ')[2]!, 'base64'));
  return (key: Buffer) => blobs.some((b) => b.equals(key));
}

async function withSftp<T>(opts: Record<string, unknown>, fn: (c: SftpClient) => Promise<T>): Promise<T> {
  const c = new SftpClient('test', { error: () => undefined, end: () => undefined, close: () => undefined });
  await c.connect(opts);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const leftovers = (info: Info) => [info.root, info.privateKeyPath, info.knownHostsPath, dirname(info.privateKeyPath)].filter((p) => existsSync(p));

describe('sftp-chroot test-server', () => {
  it('prints one JSON line whose key, password and known_hosts log in, then streams the upload as a transfer record', async () => {
    const r = await startCli([]);
    const { info } = r;
    expect(info).toMatchObject({ host: '127.0.0.1', user: 'tester', username: 'tester', url: `sftp://tester@127.0.0.1:${info.port}` });
    expect(info.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(statSync(info.privateKeyPath).mode & 0o777).toBe(0o600);
    expect(readFileSync(info.privateKeyPath, 'utf8')).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(readFileSync(info.knownHostsPath, 'utf8')).toBe(info.knownHosts + '\n');
    expect(info.knownHosts.split('\n').map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([`[127.0.0.1]:${info.port} ssh-ed25519`, `[127.0.0.1]:${info.port} ecdsa-sha2-nistp256`]);

    const base = { host: info.host, port: info.port, username: info.user, hostVerifier: verifierFor(info) };
    await withSftp({ ...base, privateKey: readFileSync(info.privateKeyPath) }, (c) => c.put(Buffer.from('1,2\n'), '/report.csv'));
    expect(await withSftp({ ...base, password: info.password }, (c) => c.exists('/report.csv'))).toBe('-');

    expect(readFileSync(join(info.root, 'report.csv'), 'utf8')).toBe('1,2\n');
    expect(await record(r, (x) => x.event === 'transfer')).toMatchObject({ path: '/report.csv', direction: 'upload', bytesWritten: 4, status: 'complete' });
    expect((await record(r, (x) => x.event === 'auth.success' && x.method === 'password')).user).toBe('tester');
    expect(await record(r, (x) => x.event === 'auth.success' && x.method === 'publickey')).toBeTruthy();
    // Without --json, people get a summary on stderr; stdout is JSON either way.
    expect(r.stderr()).toContain(`listening on 127.0.0.1:${info.port}`);
    expect(r.stderr()).toContain(`-P ${info.port} tester@127.0.0.1`);
  });

  it('--files copies the directory into the root (subdirectories, empty ones, symlinks as they are)', async () => {
    const fixtures = join(dir, 'fixtures');
    await mkdir(join(fixtures, 'in/deep'), { recursive: true });
    await mkdir(join(fixtures, 'empty'));
    await writeFile(join(fixtures, 'in/a.csv'), 'x,y\n');
    await writeFile(join(fixtures, 'in/deep/b.bin'), Buffer.from([0, 1, 2]));
    await symlink('a.csv', join(fixtures, 'in/link'));
    const r = await startCli(['--files', fixtures, '--json']);
    const root = r.info.root;
    expect(readFileSync(join(root, 'in/a.csv'), 'utf8')).toBe('x,y\n');
    expect(readFileSync(join(root, 'in/deep/b.bin'))).toEqual(Buffer.from([0, 1, 2]));
    expect(statSync(join(root, 'empty')).isDirectory()).toBe(true);
    const opts = { host: '127.0.0.1', port: r.info.port, username: r.info.user, password: r.info.password, hostVerifier: verifierFor(r.info) };
    const seen = await withSftp(opts, async (c) => [String(await c.get('/in/a.csv')), (await c.list('/in')).map((e) => `${e.type} ${e.name}`).sort()]);
    expect(seen).toEqual(['x,y\n', ['- a.csv', 'd deep', 'l link']]);
    expect(readlinkSync(join(root, 'in/link'))).toBe('a.csv');
    expect(readFileSync(join(fixtures, 'in/a.csv'), 'utf8')).toBe('x,y\n');
  });

  it('stops on stdin EOF with exit 0 after streaming server.stop, removing the root and the key files', async () => {
    const r = await startCli(['--json']);
    expect(leftovers(r.info)).toHaveLength(4);
    expect(await stopped(r, 'stdin')).toBe(0);
    expect(leftovers(r.info)).toEqual([]);
    expect(r.records().at(-1)).toMatchObject({ event: 'server.stop' });
    expect(r.stderr()).toBe('');
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('stops on %s with exit 0, removing the root and the key files', async (signal) => {
    const r = await startCli(['--json']);
    await writeFile(join(r.info.root, 'made.txt'), 'x');
    expect(await stopped(r, signal)).toBe(0);
    expect(leftovers(r.info)).toEqual([]);
  });

  it('--port, --user and --password set where it listens and who logs in', async () => {
    const free = net.createServer();
    await new Promise<void>((res) => free.listen(0, '127.0.0.1', res));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise<void>((res) => free.close(() => res()));
    const r = await startCli(['--port', String(port), '--user', 'alice', '--password', 'open sesame', '--json']);
    expect(r.info).toMatchObject({ port, user: 'alice', password: 'open sesame', url: `sftp://alice@127.0.0.1:${port}` });
    expect(r.info.knownHosts).toContain(`[127.0.0.1]:${port} ssh-ed25519 `);
    const opts = { host: '127.0.0.1', port, username: 'alice', password: 'open sesame', hostVerifier: verifierFor(r.info) };
    await withSftp(opts, (c) => c.mkdir('/made'));
    expect(statSync(join(r.info.root, 'made')).isDirectory()).toBe(true);
    expect(await record(r, (x) => x.event === 'mkdir')).toMatchObject({ user: 'alice', path: '/made', ok: true });
  });

  it('a --files path that is missing or not a directory exits 64 with a message naming it, printing no JSON', async () => {
    const missing = join(dir, 'no-such-fixtures');
    const file = join(dir, 'plain-file');
    await writeFile(file, 'x');
    const cases = [[missing, 'no such directory'], [file, 'not a directory']] as const;
    const results = await Promise.all(cases.map(([path]) => runCli(['test-server', '--files', path], dir)));
    for (const [i, [path, why]] of cases.entries()) {
      expect(results[i]).toEqual({ code: 64, stdout: '', stderr: `sftp-chroot test-server: --files ${path}: ${why}\n` });
    }
  });

  it('a busy --port exits 1 naming the address, printing no JSON', async () => {
    const busy = net.createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', res));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const res = await runCli(['test-server', '--port', String(port)], dir);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`cannot listen on 127.0.0.1:${port}: address already in use`);
      expect(res.stdout).toBe('');
    } finally {
      await new Promise<void>((res) => busy.close(() => res()));
    }
  });

  it('usage errors (unknown option, bad --port, missing value, invalid --user) exit 64; --help explains stdout, --json and stopping', async () => {
    const bad = [['--bogus'], ['--port', 'http'], ['--files'], ['--user', 'a b']];
    const [help, top, ...results] = await Promise.all([['test-server', '--help'], ['--help'], ...bad.map((a) => ['test-server', ...a])].map((a) => runCli(a, dir)));
    for (const [i, args] of bad.entries()) {
      expect({ args, code: results[i]!.code, stdout: results[i]!.stdout }).toEqual({ args, code: 64, stdout: '' });
      expect(results[i]!.stderr).toMatch(/^sftp-chroot test-server: /);
    }
    expect(help!.code).toBe(0);
    for (const word of ['--files DIR', '--json', 'privateKeyPath', 'knownHostsPath', 'stdin', 'SIGTERM', 'Exit codes']) expect(help!.stdout).toContain(word);
    expect(top!.stdout).toContain('sftp-chroot test-server');
  });
});

/** Runs a program from the repository root with a clean environment (no vitest worker variables). */
function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(__)?VITEST|^TINYPOOL|^NODE_OPTIONS$/.test(k)));
  // The examples run `node`: this one.
  const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: repo, env: { ...base, PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (e) => resolve({ code: -1, out: String(e) }));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('the examples for other languages', () => {
  it('the pytest example (paramiko) passes', async () => {
    // pytest's tmp_path goes into a folder of ours (its default, /tmp/pytest-of-<user>, would stay).
    const base = await mkdtemp(join(tmpdir(), 'sftp-chroot-pytest-'));
    try {
      const r = await run('/usr/bin/python3', ['-m', 'pytest', 'examples/pytest', '-q', '--basetemp', join(base, 't')], { PYTHONDONTWRITEBYTECODE: '1' });
      expect(r.out).toMatch(/^2 passed/m);
      expect(r.code).toBe(0);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  it('the JUnit 5 example (JSch) passes', async () => {
    const out = await mkdtemp(join(tmpdir(), 'sftp-chroot-junit5-'));
    try {
      const J = '/usr/share/java';
      const javac = await run('javac', ['-nowarn', '-d', out, '-cp', `${J}/junit-jupiter-api.jar:${J}/apiguardian-api.jar:${J}/jsch.jar`, ...['Json', 'SftpChrootTestServer', 'SftpExampleTest'].map((f) => `examples/junit5/${f}.java`)]);
      expect(javac).toEqual({ code: 0, out: '' });
      const r = await run('java', ['-jar', `${J}/junit-platform-console-standalone.jar`, '-cp', `${out}:${J}/jsch.jar`, '--select-class', 'SftpExampleTest', '--disable-banner', '--details=summary']);
      expect(r.out).toMatch(/\[\s+1 tests successful\s+\]/);
      expect(r.out).toMatch(/\[\s+0 tests failed\s+\]/);
      expect(r.code).toBe(0);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
