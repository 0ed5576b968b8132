/**
 * The test double (`sftp-chroot/testing`) as a test author meets it: the documented examples pass
 * under their own runners, many instances share one process without seeing each other, every fault
 * reaches real clients (ssh2-sftp-client and OpenSSH sftp) as the documented error, and the double
 * confines exactly like the production server.
 *
 * The client-side texts asserted here are the ones examples/README.md documents; run with
 * SHOW_CLIENT_ERRORS=1 to print every text observed.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { createHook } from 'node:async_hooks';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { promisify } from 'node:util';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { ssh2 } from '../../src/ssh/ssh2.js'; // the patched ssh2 the server runs
import SftpClient from 'ssh2-sftp-client';
import type { SFTPWrapper } from 'ssh2';
import { startTestServer, type TestServer, type TestServerOptions } from '../../src/testing.js';
import { liveRootCount } from '../../src/testing/roots.js';
import type { StatusName } from '../../src/errors.js';
import type { FaultOp } from '../../src/testing/faults.js';
import { sftpBatch, type RunResult } from '../helpers/openssh.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const MiB = 1024 * 1024;
const big = randomBytes(MiB);
const fixture = { 'in/a.csv': 'x,y\n', 'big.bin': big };

const transfer = (s: TestServer, path: string) => s.events.waitFor('transfer', (e) => e.path === path);

// ---------------------------------------------------------------------------------------------
// Helpers

/** ssh2-sftp-client without its default listeners (they console.log every close). */
function newClient(): SftpClient {
  return new SftpClient('test', { error: () => undefined, end: () => undefined, close: () => undefined });
}

async function connect(s: TestServer, over: Record<string, unknown> = {}): Promise<SftpClient> {
  const c = newClient();
  await c.connect({ ...s.connectOptions, ...over });
  return c;
}

/** ssh2's SFTP object under ssh2-sftp-client (for requests it has no method for). */
const raw = (c: SftpClient) => (c as unknown as { sftp: SFTPWrapper }).sftp;

async function withClient<T>(s: TestServer, fn: (c: SftpClient) => Promise<T>): Promise<T> {
  const c = await connect(s);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error & { code?: unknown }> {
  return p.then(
    (v) => {
      throw new Error(`expected a failure, got ${String(v)}`);
    },
    (e: Error) => e,
  );
}

const elapsed = async (fn: () => Promise<unknown>) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};

function resourceCounts(): Record<string, number> {
  const c: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) c[r] = (c[r] ?? 0) + 1;
  return c;
}

function tcpConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve('connected');
    });
    sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** OpenSSH's stderr without the CRs its tty-less output carries. */
const stderrOf = (r: RunResult) => r.stderr.replace(/\r/g, '').trim();

/** Client texts observed per case (printed with SHOW_CLIENT_ERRORS=1, for the README). */
const observed: Record<string, Record<string, string>> = {};
const note = (name: string, client: string, text: string) => ((observed[name] ??= {})[client] = text);

let local: string;
beforeAll(async () => {
  local = await mkdtemp(join(tmpdir(), 'sftp-double-local-'));
  await writeFile(join(local, 'up.bin'), 'local data\n');
});
afterAll(async () => {
  await rm(local, { recursive: true, force: true });
  if (process.env.SHOW_CLIENT_ERRORS) console.log(JSON.stringify(observed, null, 2));
});

// ---------------------------------------------------------------------------------------------
// The documented examples, each under its own runner, in child processes: started by the fault
// tests (so they run alongside them), their results checked by the last describe.

const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

function runExample(bin: string, args: string[]): Promise<{ code: number | null; out: string }> {
  // A runner spawned from a vitest worker must not believe it is that worker.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(__)?VITEST|^TINYPOOL|^NODE_OPTIONS$/.test(k)));
  return new Promise((resolve) => {
    // The bins `npx jest|mocha|vitest` would run, without npx's own start-up.
    const cmd = bin === 'node' ? process.execPath : join(repo, 'node_modules/.bin', bin);
    const child = spawn(cmd, args, { cwd: repo, env: { ...env, NO_COLOR: '1', FORCE_COLOR: '0', CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000).unref();
    child.on('error', (e) => resolve({ code: -1, out: String(e) }));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: strip(out) });
    });
  });
}

const examples = [
  { name: 'vitest', bin: 'vitest', args: ['run', '--config', 'examples/vitest/vitest.config.ts'], passed: /Tests\s+1 passed \(1\)/ },
  { name: 'jest (CommonJS)', bin: 'jest', args: ['--config', 'examples/jest/jest.config.cjs'], passed: /Tests:\s+1 passed, 1 total/ },
  { name: 'node:test', bin: 'node', args: ['--test', 'examples/node-test/'], passed: /^(#|ℹ) pass 1\n(#|ℹ) fail 0$/m },
  { name: 'mocha', bin: 'mocha', args: ['--config', 'examples/mocha/.mocharc.cjs'], passed: /^\s*1 passing/m },
];
const built = existsSync(join(repo, 'dist/testing.js')) && existsSync(join(repo, 'dist/cjs/testing.cjs'));
const exampleRuns = new Map<string, Promise<{ code: number | null; out: string }>>();
/** Starts (once) the runner of one example; started early by the fault tests, awaited at the end. */
function exampleRun(e: (typeof examples)[number]) {
  if (!exampleRuns.has(e.name)) exampleRuns.set(e.name, runExample(e.bin, e.args));
  return exampleRuns.get(e.name)!;
}

/**
 * startTestServer, tried again only when ssh2's ed25519 key generation produced an unusable key
 * (mscdex/ssh2#1390, ~1 key in 256; two keys per instance): see the known-bugs test below.
 */
/** startTestServer, named short: the ed25519 key bug (ssh2 #1390) that once needed retries is fixed in the patch. */
const start = (opts?: TestServerOptions): Promise<TestServer> => startTestServer(opts);

// ---------------------------------------------------------------------------------------------

describe('isolation', () => {
  it("50 instances in parallel never see each other's files, users or events, and leave nothing behind", async () => {
    const N = 50;
    const watched = ['Timeout', 'TCPServerWrap', 'TCPSocketWrap'];
    const before = resourceCounts();
    const started = await Promise.allSettled(
      Array.from({ length: N }, (_, i) => start({ username: `user${i}`, files: { [`own-${i}.txt`]: `instance ${i}\n`, [`dir-${i}/`]: null } })),
    );
    const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    try {
      expect(started.flatMap((r) => (r.status === 'rejected' ? [String(r.reason?.stack ?? r.reason)] : []))).toEqual([]);
      expect(new Set(servers.map((s) => s.port)).size).toBe(N);
      expect(new Set(servers.map((s) => s.root)).size).toBe(N);

      // Each instance: its own listing, its own file, its own single user.
      await Promise.all(
        servers.map((s, i) =>
          withClient(s, async (c) => {
            expect((await c.list('/')).map((e) => e.name).sort()).toEqual([`dir-${i}`, `own-${i}.txt`]);
            expect(String(await c.get(`/own-${i}.txt`))).toBe(`instance ${i}\n`);
            expect(s.users.map((u) => u.username)).toEqual([`user${i}`]);
            expect(await s.tree()).toEqual([`/dir-${i}/`, `/own-${i}.txt`]);
          }),
        ),
      );
      // Instance i does not know instance i+1's user, password included.
      await Promise.all(
        servers.map(async (s, i) => {
          const other = servers[(i + 1) % N]!;
          const err = await rejection(connect(s, { username: other.username, password: other.password }));
          expect(err.message).toMatch(/All configured authentication methods failed/);
        }),
      );
      for (const [i, s] of servers.entries()) {
        await s.events.waitFor('session.close');
        await s.events.waitFor('auth.failure');
        // Refused logins: auth.failure, and connection.close (the end of a connection that never logged in).
        const logins = s.events.filter((e) => 'user' in e && e.user !== undefined && e.event !== 'auth.failure' && e.event !== 'connection.close');
        expect(new Set(logins.map((e) => (e as { user: string }).user))).toEqual(new Set([`user${i}`]));
        // The only foreign name an instance ever saw is the one it refused as unknown.
        for (const f of s.events.ofType('auth.failure')) expect([f.user, f.reason]).toEqual([`user${(i + 1) % N}`, 'unknown-user']);
        for (const c of s.events.ofType('connection.close')) expect([c.user, c.stage]).toEqual([`user${(i + 1) % N}`, 'authentication']);
        expect(s.events.ofType('auth.success')).toHaveLength(1);
        expect(s.events.ofType('transfer').map((t) => t.path)).toEqual([`/own-${i}.txt`]);
      }
      // No session id appears in two instances.
      const ids = servers.flatMap((s) => [...new Set(s.events.flatMap((e) => ('sessionId' in e && e.sessionId ? [e.sessionId] : [])))]);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }

    // Nothing left: no listener, no temporary root, no (ref'd) timer or socket.
    expect(await Promise.all(servers.map((s) => tcpConnect(s.port)))).toEqual(Array(N).fill('ECONNREFUSED'));
    expect(servers.filter((s) => existsSync(s.root)).map((s) => s.root)).toEqual([]);
    let after = resourceCounts();
    for (let i = 0; i < 50 && watched.some((k) => (after[k] ?? 0) > (before[k] ?? 0)); i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = resourceCounts();
    }
    for (const k of watched) expect(after[k] ?? 0, `${k}: ${JSON.stringify({ before, after })}`).toBeLessThanOrEqual(before[k] ?? 0);
  });
});

// ---------------------------------------------------------------------------------------------

/** One injected fault, seen through ssh2-sftp-client and through OpenSSH sftp. */
interface FaultCase {
  name: string;
  op: FaultOp;
  status: StatusName;
  path: string;
  client: (c: SftpClient) => Promise<unknown>;
  clientError: string;
  /** OpenSSH's `rename` is posix-rename@openssh.com, and its `ls DIR` opens "DIR/". */
  openssh: { op?: FaultOp; path?: string; batch: string[]; stderr: string };
}

const faultCases: FaultCase[] = [
  {
    name: 'open', op: 'open', status: 'PERMISSION_DENIED', path: '/in/a.csv',
    client: (c) => c.get('/in/a.csv'), clientError: 'get: Permission denied /in/a.csv',
    openssh: { batch: ['get /in/a.csv a.csv'], stderr: 'remote open "/in/a.csv": Permission denied' },
  },
  {
    name: 'stat', op: 'stat', status: 'NO_SUCH_FILE', path: '/in/a.csv',
    client: (c) => c.stat('/in/a.csv'), clientError: '_xstat: No such file: /in/a.csv',
    openssh: { batch: ['get /in/a.csv a.csv'], stderr: 'stat remote: No such file or directory' },
  },
  {
    name: 'opendir', op: 'opendir', status: 'PERMISSION_DENIED', path: '/in',
    client: (c) => c.list('/in'), clientError: 'list: Permission denied /in',
    openssh: { path: '/in/', batch: ['ls /in'], stderr: 'remote readdir("/in/"): Permission denied' },
  },
  {
    name: 'remove', op: 'remove', status: 'PERMISSION_DENIED', path: '/in/a.csv',
    client: (c) => c.delete('/in/a.csv'), clientError: 'delete: Permission denied /in/a.csv',
    openssh: { batch: ['rm /in/a.csv'], stderr: 'remote delete /in/a.csv: Permission denied' },
  },
  {
    name: 'rename', op: 'rename', status: 'FAILURE', path: '/in/a.csv',
    client: (c) => c.rename('/in/a.csv', '/in/b.csv'), clientError: '_rename: Failure From: /in/a.csv To: /in/b.csv',
    openssh: { op: 'posix-rename', batch: ['rename /in/a.csv /in/b.csv'], stderr: 'remote rename "/in/a.csv" to "/in/b.csv": Failure' },
  },
  {
    name: 'posix-rename', op: 'posix-rename', status: 'FAILURE', path: '/in/a.csv',
    client: (c) => c.posixRename('/in/a.csv', '/in/b.csv'), clientError: '_posixRename: Failure From: /in/a.csv To: /in/b.csv',
    openssh: { batch: ['rename /in/a.csv /in/b.csv'], stderr: 'remote rename "/in/a.csv" to "/in/b.csv": Failure' },
  },
  {
    name: 'mkdir', op: 'mkdir', status: 'PERMISSION_DENIED', path: '/new',
    client: (c) => c.mkdir('/new'), clientError: 'mkdir: _doMkdir: Permission denied /new',
    openssh: { batch: ['mkdir /new'], stderr: 'remote mkdir "/new": Permission denied' },
  },
  {
    // put() does not report a failed WRITE (see "write faults and put()" below): use fastPut.
    name: 'write', op: 'write', status: 'FAILURE', path: '/up.bin',
    client: (c) => c.fastPut(join(local, 'up.bin'), '/up.bin'), clientError: 'fastPut: Failure Local: LOCAL/up.bin Remote: /up.bin',
    // The upload is atomic: after a failed write the close refuses to publish it, and says so.
    openssh: { batch: ['put up.bin /up.bin'], stderr: 'write remote "/up.bin": Failure\nclose remote: Failure' },
  },
  {
    name: 'read', op: 'read', status: 'PERMISSION_DENIED', path: '/in/a.csv',
    client: (c) => c.get('/in/a.csv'), clientError: 'get: Permission denied /in/a.csv',
    openssh: { batch: ['get /in/a.csv a.csv'], stderr: 'read remote "/in/a.csv" : Permission denied' },
  },
];

const STATUS_TEXT: [StatusName, string, string][] = [
  // status, ssh2-sftp-client's text (the server's message), OpenSSH's text (its own, per code)
  ['NO_SUCH_FILE', 'No such file', 'No such file or directory'],
  ['PERMISSION_DENIED', 'Permission denied', 'Permission denied'],
  ['FAILURE', 'Failure', 'Failure'],
  ['BAD_MESSAGE', 'Bad message', 'Bad message'],
  ['NO_CONNECTION', 'No connection', 'No connection'],
  ['CONNECTION_LOST', 'Connection lost', 'Connection lost'],
  ['OP_UNSUPPORTED', 'Operation unsupported', 'Operation unsupported'],
  ['EOF', 'End of file', 'End of file'],
];

describe.concurrent('fault injection', () => {
  // The example runners are child processes: they run alongside these tests.
  beforeAll(() => {
    if (built) for (const e of examples) void exampleRun(e);
  });

  it.each(faultCases)('failNext($op, $status) reaches both clients as the mapped error', async (f) => {
    await using s = await start({ files: fixture });
    s.failNext(f.op, f.status, { path: f.path });
    const err = await rejection(withClient(s, f.client));
    note(`${f.op} ${f.status}`, 'ssh2-sftp-client', `${err.message} (code ${String(err.code)})`);
    expect(err.message.replace(local, 'LOCAL')).toBe(f.clientError);

    s.failNext(f.openssh.op ?? f.op, f.status, { path: f.openssh.path ?? f.path });
    const r = await sftpBatch(s, f.openssh.batch, { cwd: local });
    note(`${f.op} ${f.status}`, 'openssh', stderrOf(r));
    expect(stderrOf(r)).toBe(f.openssh.stderr);
    expect(r.code).toBe(1);
  });

  it('every status reaches both clients with its text and code', async () => {
    await using s = await start({ files: Object.fromEntries(STATUS_TEXT.map(([st]) => [`${st}.txt`, st])) });
    await withClient(s, (c) =>
      Promise.all(
        STATUS_TEXT.map(async ([status, text]) => {
          s.failNext('open', status, { path: `/${status}.txt` });
          const err = await rejection(c.get(`/${status}.txt`));
          expect([err.message, err.code]).toEqual([`get: ${text} /${status}.txt`, ssh2.utils.sftp.STATUS_CODE[status]]);
        }),
      ),
    );
    // One OpenSSH session; a leading "-" lets the batch go on after a failed command.
    for (const [status] of STATUS_TEXT) s.failNext('open', status, { path: `/${status}.txt` });
    const r = await sftpBatch(s, STATUS_TEXT.map(([status]) => `-get /${status}.txt ${status}.out`), { cwd: local });
    expect(stderrOf(r).split('\n')).toEqual(STATUS_TEXT.map(([status, , opensshText]) => `remote open "/${status}.txt": ${opensshText}`));
  });

  it('times: 2 fails the next two matching requests, then lets them through', async () => {
    await using s = await start({ files: fixture });
    s.failNext('open', 'PERMISSION_DENIED', { path: '/in/a.csv', times: 2 });
    const got = await withClient(s, async (c) => {
      const out: string[] = [];
      for (let i = 0; i < 3; i++) out.push(await c.get('/in/a.csv').then(String, (e: Error) => e.message));
      return out;
    });
    expect(got).toEqual(['get: Permission denied /in/a.csv', 'get: Permission denied /in/a.csv', 'x,y\n']);

    s.failNext('open', 'PERMISSION_DENIED', { path: '/in/a.csv', times: 2 });
    const r = await sftpBatch(s, ['-get /in/a.csv t1.csv', '-get /in/a.csv t2.csv', 'get /in/a.csv t3.csv'], { cwd: local });
    expect(stderrOf(r)).toBe('remote open "/in/a.csv": Permission denied\n'.repeat(2).trim());
    expect(r.code).toBe(0);
    expect(await readFile(join(local, 't3.csv'), 'utf8')).toBe('x,y\n');
  });

  it("message: 'custom text' reaches ssh2-sftp-client; OpenSSH prints its own text for the status", async () => {
    await using s = await start({ files: fixture });
    s.failNext('open', 'PERMISSION_DENIED', { path: '/in/a.csv', message: 'custom text' });
    const err = await rejection(withClient(s, (c) => c.get('/in/a.csv')));
    note('message: custom text', 'ssh2-sftp-client', err.message);
    expect([err.message, err.code]).toEqual(['get: custom text /in/a.csv', 3]);
    // ssh2's own client hands the message over as is.
    s.failNext('open', 'PERMISSION_DENIED', { path: '/in/a.csv', message: 'custom text' });
    const direct = await withClient(s, (c) => rejection(promisify(raw(c).open.bind(raw(c)))('/in/a.csv', 'r')));
    expect(direct.message).toBe('custom text');

    s.failNext('open', 'PERMISSION_DENIED', { path: '/in/a.csv', message: 'custom text' });
    const r = await sftpBatch(s, ['get /in/a.csv a.csv'], { cwd: local });
    note('message: custom text', 'openssh', stderrOf(r));
    expect(stderrOf(r)).toBe('remote open "/in/a.csv": Permission denied');
  });

  it('write faults and put(): the close refuses to publish the atomic upload, so put() rejects; the transfer record shows it', async () => {
    await using s = await start({ files: fixture });
    s.failNext('write', 'FAILURE', { path: '/up.bin' });
    // mscdex/ssh2#1091: with autoClose the WriteStream drops the WRITE's error; the CLOSE's reaches put().
    await expect(withClient(s, (c) => c.put(Buffer.from('local data\n'), '/up.bin'))).rejects.toThrow(/Failure/);
    expect(await transfer(s, '/up.bin')).toMatchObject({ status: 'error', sftpStatus: 'FAILURE', bytesWritten: 0, atomic: true });
    expect(await s.exists('/up.bin')).toBe(false);
  });

  it('write faults and put() on a user without atomic uploads: the upload resolves (ssh2 WriteStream drops the error), the record shows it', async () => {
    await using s = await start({ files: fixture, atomicUploads: false });
    s.failNext('write', 'FAILURE', { path: '/up.bin' });
    await expect(withClient(s, (c) => c.put(Buffer.from('local data\n'), '/up.bin'))).resolves.toBe('Uploaded data stream to /up.bin');
    expect(await transfer(s, '/up.bin')).toMatchObject({ status: 'error', sftpStatus: 'FAILURE', bytesWritten: 0 });
    expect((await s.readFile('/up.bin')).length).toBe(0);
  });

  it('diskFull: uploads fail with FAILURE "Failure" (as OpenSSH sends for ENOSPC) and log an error transfer', async () => {
    await using s = await start({ files: fixture });
    s.faults.diskFull = true;
    const err = await rejection(withClient(s, (c) => c.fastPut(join(local, 'up.bin'), '/full-1.bin')));
    note('diskFull', 'ssh2-sftp-client', err.message);
    expect([err.message.replace(local, 'LOCAL'), err.code]).toEqual(['fastPut: Failure Local: LOCAL/up.bin Remote: /full-1.bin', 4]);
    expect(await transfer(s, '/full-1.bin')).toMatchObject({ direction: 'upload', status: 'error', sftpStatus: 'FAILURE', message: 'Failure', bytesWritten: 0 });

    const r = await sftpBatch(s, ['put up.bin /full-2.bin'], { cwd: local });
    note('diskFull', 'openssh', stderrOf(r));
    expect(stderrOf(r)).toBe('write remote "/full-2.bin": Failure\nclose remote: Failure');
    expect(await transfer(s, '/full-2.bin')).toMatchObject({ status: 'error', sftpStatus: 'FAILURE' });

    s.faults.diskFull = false;
    await withClient(s, (c) => c.fastPut(join(local, 'up.bin'), '/full-3.bin'));
    expect(String(await s.readFile('/full-3.bin'))).toBe('local data\n');
  });

  it('delayMs: 200 makes a stat take at least 200 ms', async () => {
    await using s = await start({ files: fixture });
    await withClient(s, async (c) => {
      const fast = await elapsed(() => c.stat('/in/a.csv'));
      s.faults.delayMs = 200;
      const slow = await elapsed(() => c.stat('/in/a.csv'));
      expect(slow).toBeGreaterThanOrEqual(198); // timers may fire a ms or two early against performance.now()
      expect(fast).toBeLessThan(slow);
    });
  });

  it('bytesPerSecond caps a 1 MiB download at 2 MiB/s to at least 0.4 s (ssh2-sftp-client get, OpenSSH get)', async () => {
    await using s = await start({ files: fixture });
    s.faults.bytesPerSecond = 2 * MiB;
    const ms = await elapsed(() => withClient(s, async (c) => expect(((await c.get('/big.bin')) as Buffer).equals(big)).toBe(true)));
    expect(ms).toBeGreaterThanOrEqual(400);
    const r = await sftpBatch(s, ['get /big.bin capped.bin'], { cwd: local });
    expect(r.code).toBe(0);
    const t = s.events.ofType('transfer').filter((e) => e.path === '/big.bin');
    expect(t).toHaveLength(2);
    for (const e of t) expect(e.durationMs).toBeGreaterThanOrEqual(400);
  });

  it('dropAfterBytes cuts the connection mid-download: the clients see it lost, the server logs the cut transfer', async () => {
    await using s = await start({ files: fixture });
    s.faults.dropAfterBytes = 100_000;
    const err = await rejection(withClient(s, (c) => c.get('/big.bin')));
    note('dropAfterBytes', 'ssh2-sftp-client', `${err.message} (code ${String(err.code)})`);
    expect([err.message, err.code]).toEqual(['get: Unexpected end event', 'ERR_GENERIC_CLIENT']);
    const cut = await transfer(s, '/big.bin');
    expect(cut.status).not.toBe('complete');
    expect(cut.bytesRead).toBeLessThan(100_000);
    expect(await s.events.waitFor('session.close')).toMatchObject({ reason: expect.stringMatching(/^injected drop after \d+ bytes$/) });

    await using s2 = await start({ files: fixture });
    s2.faults.dropAfterBytes = 100_000;
    const r = await sftpBatch(s2, ['get /big.bin dropped.bin'], { cwd: local });
    note('dropAfterBytes', 'openssh', `${stderrOf(r)} (exit ${r.code})`);
    expect(stderrOf(r)).toBe('Connection to 127.0.0.1 closed by remote host.\nConnection closed');
    expect(r.code).toBe(255);
    expect((await transfer(s2, '/big.bin')).status).not.toBe('complete');
  });

  it('shortReadBytes: 1000 still gives byte-identical downloads, in reads of at most 1000 bytes', async () => {
    await using s = await start({ files: fixture });
    s.faults.shortReadBytes = 1000;
    await withClient(s, async (c) => {
      expect(((await c.get('/big.bin')) as Buffer).equals(big)).toBe(true);
      await c.fastGet('/big.bin', join(local, 'short-fast.bin'));
    });
    expect((await readFile(join(local, 'short-fast.bin'))).equals(big)).toBe(true);
    const r = await sftpBatch(s, ['get /big.bin short-openssh.bin'], { cwd: local });
    expect(r.code).toBe(0);
    expect((await readFile(join(local, 'short-openssh.bin'))).equals(big)).toBe(true);
    await s.events.waitFor(() => s.events.ofType('transfer').length === 3);
    for (const t of s.events.ofType('transfer')) expect(t).toMatchObject({ path: '/big.bin', status: 'complete', bytesRead: MiB, maxRequestBytes: 1000 });
  });
});

// ---------------------------------------------------------------------------------------------

describe('the returned object', () => {
  it('connectOptions work for ssh2 and ssh2-sftp-client and reject a different host key', async () => {
    await using s = await start({ files: fixture });
    await using other = await start();

    const conn = new ssh2.Client();
    conn.connect(s.connectOptions);
    await once(conn, 'ready');
    const sftp = await promisify(conn.sftp.bind(conn))();
    expect(String(await promisify(sftp.readFile.bind(sftp))('/in/a.csv'))).toBe('x,y\n');
    conn.end();

    expect((await withClient(s, (c) => c.list('/'))).map((e) => e.name).sort()).toEqual(['big.bin', 'in']);
    // The key pair works as well as the password.
    const { password: _, ...keyOnly } = s.connectOptions;
    const byKey = newClient();
    await byKey.connect({ ...keyOnly, privateKey: s.privateKey });
    expect(await byKey.exists('/in/a.csv')).toBe('-');
    await byKey.end();

    // Another instance's host key is refused by this instance's hostVerifier.
    const wrong = { ...s.connectOptions, port: other.port };
    const e1 = await rejection(connect(other, wrong));
    expect(e1.message).toBe('getConnection: Host denied (verification failed)');
    const c2 = new ssh2.Client();
    c2.connect(wrong);
    const [e2] = (await once(c2, 'error')) as [Error & { level?: string }];
    expect([e2.message, e2.level]).toEqual(['Host denied (verification failed)', 'handshake']);
    expect(s.connectOptions.hostVerifier(Buffer.from('not a key'))).toBe(false);
    expect(other.events.ofType('auth.success')).toHaveLength(0);

    // knownHosts does the same for OpenSSH.
    const r = await sftpBatch({ ...s, knownHosts: other.knownHosts }, ['pwd']);
    expect(r.stderr).toMatch(/Host key verification failed/);
    expect(s.url).toBe(`sftp://${s.username}@127.0.0.1:${s.port}`);
    expect(s.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('readFile, writeFile, exists and tree work in virtual paths', async () => {
    await using s = await start({
      users: [
        { username: 'alice', files: { 'in/a.csv': 'x,y\n', 'empty/': null, 'deep/er/bin.dat': Buffer.from([0, 1, 2]) } },
        { username: 'bob', files: { 'b.txt': 'bob\n' } },
      ],
    });
    expect([s.username, s.users.map((u) => u.username)]).toEqual(['alice', ['alice', 'bob']]);
    expect(await s.tree()).toEqual(['/deep/', '/deep/er/', '/deep/er/bin.dat', '/empty/', '/in/', '/in/a.csv']);
    expect(await s.tree('bob')).toEqual(['/b.txt']);
    expect([...(await s.readFile('/deep/er/bin.dat'))]).toEqual([0, 1, 2]);
    expect(String(await s.readFile('b.txt', 'bob'))).toBe('bob\n');
    // Paths are virtual: relative means from /, and .. stops at the root.
    expect(String(await s.readFile('in/a.csv'))).toBe('x,y\n');
    expect(String(await s.readFile('/../../in/../in/a.csv'))).toBe('x,y\n');
    expect([await s.exists('/in/a.csv'), await s.exists('/empty'), await s.exists('/nope'), await s.exists('/b.txt')]).toEqual([true, true, false, false]);
    expect(await s.exists('/b.txt', 'bob')).toBe(true);

    await s.writeFile('/made/on/the/fly.txt', 'hello');
    await s.writeFile('/../escape.txt', 'stays inside');
    await s.writeFile('/for-bob.txt', Buffer.from('hi bob'), 'bob');
    expect(await s.tree()).toContain('/made/on/the/fly.txt');
    expect(await s.tree()).toContain('/escape.txt');
    expect(await s.tree('bob')).toEqual(['/b.txt', '/for-bob.txt']);
    // What the helpers write, the client reads; what the client writes, the helpers read.
    await withClient(s, async (c) => {
      expect(String(await c.get('/made/on/the/fly.txt'))).toBe('hello');
      await c.put(Buffer.from('from client'), '/in/c.csv');
    });
    expect(String(await s.readFile('/in/c.csv'))).toBe('from client');
    const bob = newClient();
    await bob.connect({ ...s.connectOptions, username: 'bob', password: s.users[1]!.password });
    expect(String(await bob.get('/for-bob.txt'))).toBe('hi bob');
    await bob.end();
  });

  it('the same confinement is used (no test-only shortcut)', async () => {
    const host = readFileSync('/etc/passwd', 'utf8');
    await using s = await start({ files: { 'etc/passwd': 'the jail\'s own passwd\n' } });
    await withClient(s, async (c) => {
      const symlink = promisify(raw(c).symlink.bind(raw(c)));
      await symlink('/', '/slash');
      await symlink('../../../../../..', '/up');
      await symlink('/etc/passwd', '/abs');
      for (const p of ['/slash/../../etc/passwd', '/slash/etc/passwd', '/up/etc/passwd', '/abs', '/../../etc/passwd']) {
        expect(String(await c.get(p)), p).toBe('the jail\'s own passwd\n');
      }
      expect(await c.realPath('/slash/../..')).toBe('/');
      expect(await c.realPath('/up')).toBe('/');
    });
    const r = await sftpBatch(s, ['get /slash/../../etc/passwd p1', 'get /up/etc/passwd p2', 'get /abs p3'], { cwd: local });
    expect(r.code).toBe(0);
    for (const f of ['p1', 'p2', 'p3']) {
      const got = await readFile(join(local, f), 'utf8');
      expect(got).toBe('the jail\'s own passwd\n');
      expect(got).not.toBe(host);
    }
    // The double is the production server (startServer) configured with this root, nothing else.
    expect(s.server.config.users.map((u) => u.root)).toEqual([s.root]);
    // The helpers map paths lexically: ../ never leaves the root.
    expect(String(await s.readFile('/slash/../../etc/passwd'))).toBe('the jail\'s own passwd\n');
  });
});

// ---------------------------------------------------------------------------------------------

/** A port nothing listens on right now (the kernel's pick, released). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Settles within this turn of the event loop, or is still pending (no clocks involved). */
async function settledNow(p: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  let state: 'resolved' | 'rejected' | 'pending' = 'pending';
  p.then(() => (state = 'resolved'), () => (state = 'rejected'));
  await new Promise((r) => setImmediate(r));
  return state;
}

describe('lifecycle and options', () => {
  it('port: a fixed port is the one listened on, and a busy one is an error naming it that leaves nothing behind', async () => {
    const port = await freePort();
    await using s = await start({ port, files: fixture });
    expect([s.port, s.connectOptions.port, s.url]).toEqual([port, port, `sftp://tester@127.0.0.1:${port}`]);
    expect(s.knownHosts).toContain(`[127.0.0.1]:${port} ssh-ed25519 `);
    expect(String(await withClient(s, (c) => c.get('/in/a.csv')))).toBe('x,y\n');

    const roots = liveRootCount();
    const err = await rejection(start({ port, files: fixture }));
    expect(err.message).toBe(`port ${port} on 127.0.0.1 is already in use (EADDRINUSE); leave port out (or 0) for a free one`);
    expect(err.code).toBe('EADDRINUSE');
    expect(liveRootCount()).toBe(roots);
  });

  it('port: anything but an integer from 0 to 65535 is a TypeError naming the option', async () => {
    for (const port of [-1, 65536, 1.5, Number.NaN]) {
      await expect(start({ port })).rejects.toThrow(new TypeError(`port must be an integer from 0 to 65535 (0: any free port), got ${port}`));
    }
  });

  it('waitForTimeoutMs sets the instance default; a per-call timeout still wins', async () => {
    await using s = await start({ waitForTimeoutMs: 50 });
    await expect(s.events.waitFor('rename')).rejects.toThrow(/^no "rename" event within 50 ms; saw: /);
    await expect(s.events.waitFor('rename', { timeout: 10 })).rejects.toThrow(/^no "rename" event within 10 ms; saw: /);
  });

  it('waitFor pending when the server closes rejects as soon as close() ends, saying what it saw', async () => {
    const s = await start({ files: fixture });
    await withClient(s, (c) => c.get('/in/a.csv'));
    const waiting = s.events.waitFor('rename', { timeout: 60_000 });
    waiting.catch(() => undefined); // checked below, after the next turn
    await s.close();
    expect(await settledNow(waiting)).toBe('rejected');
    await expect(waiting).rejects.toThrow(/^test server closed; saw: .*auth\.success.*transfer \/in\/a\.csv.*session\.close/);
    const late = s.events.waitFor('rename', { timeout: 60_000 });
    expect(await settledNow(late)).toBe('rejected');
    await expect(late).rejects.toThrow(/^test server closed; saw: /);
  });

  it('events of the shutdown itself still reach a pending waitFor (a session ended by close)', async () => {
    const s = await start({ files: fixture });
    const c = await connect(s);
    try {
      const ended = s.events.waitFor('session.close', { timeout: 60_000 });
      await s.close();
      expect(await ended).toMatchObject({ event: 'session.close', user: s.username });
    } finally {
      await c.end().catch(() => undefined);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Bugs found while writing this file, fixed in src/ (and the ssh2 patch); each test fails if its bug returns.

describe('fixed bugs, kept as regression tests', () => {
  it("ssh2's ed25519 key generation (startTestServer's host and user keys) always yields parseable keys", () => {
    // mscdex/ssh2#1390: lib/keygen.js strips every leading zero byte of the public key, so about 1
    // key in 256 has a 31-byte public key that parseKey rejects ("Malformed OpenSSH private key").
    // startTestServer, the first-start host key (src/ssh/host-keys.ts) and `sftp-chroot keygen`
    // all use it. 3000 tries miss such a key with probability ~1e-5.
    for (let i = 0; i < 3000; i++) {
      const pair = ssh2.utils.generateKeyPairSync('ed25519');
      expect(ssh2.utils.parseKey(pair.private)).not.toBeInstanceOf(Error);
      expect(ssh2.utils.parseKey(pair.public)).not.toBeInstanceOf(Error);
    }
  });

  it('close() resolves promptly while a client is still connected', async () => {
    const s = await start({ files: fixture });
    const c = await connect(s);
    try {
      const closed = await Promise.race([s.close().then(() => 'closed'), new Promise((r) => setTimeout(r, 1500, 'still waiting'))]);
      expect(closed).toBe('closed');
    } finally {
      await c.end().catch(() => undefined);
      await s.close();
    }
  });

  it("close() leaves no timer behind, not even an unref'd one", async () => {
    const live = new Map<number, string>();
    const hook = createHook({
      init(id, type) {
        if (type === 'Timeout') live.set(id, new Error().stack ?? '');
      },
      destroy(id) {
        live.delete(id);
      },
    });
    const s = await start({ files: fixture });
    hook.enable();
    try {
      await withClient(s, (c) => c.get('/in/a.csv'));
      await s.close();
      await new Promise((r) => setImmediate(r));
    } finally {
      hook.disable();
    }
    const ours = [...live.values()].filter((st) => st.includes(join(repo, 'src')));
    expect(ours).toEqual([]);
  });

  it('bytesPerSecond caps a pipelined download too (ssh2 fastGet: 64 requests in flight)', async () => {
    // 1 MiB at 512 KiB/s is 2 s; today each request sleeps for its own bytes, concurrently: ~0.1 s.
    await using s = await start({ files: fixture });
    s.faults.bytesPerSecond = 512 * 1024;
    const ms = await elapsed(() => withClient(s, (c) => c.fastGet('/big.bin', join(local, 'capped-fast.bin'))));
    expect(ms).toBeGreaterThanOrEqual(1800);
  });

  it('dropAfterBytes logs the cut transfer as incomplete (no status was sent to the client)', async () => {
    await using s = await start({ files: fixture });
    s.faults.dropAfterBytes = 100_000;
    await rejection(withClient(s, (c) => c.fastGet('/big.bin', join(local, 'cut.bin'))));
    const cut = await transfer(s, '/big.bin');
    expect(cut).toMatchObject({ status: 'incomplete' });
    expect(cut.sftpStatus).toBeUndefined();
  });

  it('a fault on "/in" matches OpenSSH\'s `ls /in` (which opens "/in/")', async () => {
    await using s = await start({ files: fixture });
    s.failNext('opendir', 'PERMISSION_DENIED', { path: '/in' });
    const r = await sftpBatch(s, ['ls /in']);
    expect(stderrOf(r)).toBe('remote readdir("/in/"): Permission denied');
  });

  it('readFile and exists do not follow a symlink out of the root', async () => {
    await using s = await start({ files: { 'etc/passwd': 'the jail\'s own passwd\n' } });
    await withClient(s, (c) => promisify(raw(c).symlink.bind(raw(c)))('/', '/slash'));
    // The client reads the jail's file here; the helper should too (today it reads the host's).
    expect(String(await s.readFile('/slash/etc/passwd'))).toBe('the jail\'s own passwd\n');
  });
});

// ---------------------------------------------------------------------------------------------

describe('documented examples', () => {
  it.concurrent.each(examples)('each documented example passes under its own runner: $name', async (e) => {
    expect(built, 'the examples import the built package (dist/): run `npm run build` (npm test does)').toBe(true);
    const r = await exampleRun(e);
    expect(r.out).toMatch(e.passed);
    expect(r.code, r.out).toBe(0);
  });

  it('each example is short and imports the package by its name', () => {
    for (const f of ['vitest/sftp.test.ts', 'jest/sftp.test.cjs', 'node-test/sftp.test.mjs', 'mocha/sftp.test.mjs']) {
      const text = readFileSync(join(repo, 'examples', f), 'utf8');
      expect(text).toMatch(/from 'sftp-chroot\/testing'|require\('sftp-chroot\/testing'\)/);
      expect(text).toContain("files: { 'in/a.csv': 'x,y\\n' }");
      expect(text).toContain("s.events.waitFor('transfer')");
      expect(text).toContain('s.readFile(');
      expect(text.trimEnd().split('\n').length, f).toBeLessThanOrEqual(30);
    }
    expect(readFileSync(join(repo, 'examples/vitest/sftp.test.ts'), 'utf8')).toContain('await using s = await startTestServer(');
    // The README for test authors carries the examples verbatim.
    const readme = readFileSync(join(repo, 'examples/README.md'), 'utf8');
    for (const f of ['vitest/sftp.test.ts', 'jest/sftp.test.cjs', 'node-test/sftp.test.mjs', 'mocha/sftp.test.mjs']) {
      expect(readme, f).toContain(readFileSync(join(repo, 'examples', f), 'utf8').trim());
    }
  });
});
