/**
 * The daemon as a service manager sees it: sd_notify readiness (Type=notify) through a stand-in
 * notify socket, and --pid-file (what logrotate signals outside systemd).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runCli } from '../helpers/cli.js';
import { notifySocket, type NotifySocket } from '../helpers/notify-socket.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sftp-chroot-service-'));
  await mkdir(join(dir, 'root'));
  for (const type of ['ed25519', 'ecdsa', 'rsa']) await runCli(['keygen', '--type', type, '--out', join(dir, 'keys')], dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
}
const running = new Set<Run>();
const sockets: NotifySocket[] = [];
afterEach(async () => {
  for (const r of running) r.child.kill('SIGKILL');
  await Promise.all([...running].map((r) => r.exited));
  running.clear();
  for (const s of sockets.splice(0)) s.close();
});

async function configFile(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify({ keysDir: 'keys', listen: { host: '127.0.0.1', port: 0 }, passwordCost: 10, users: [{ username: 'u', password: 'pw', root: 'root' }], log: { file: `${name}.audit.json` }, ...extra }));
  return file;
}

function daemon(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const run: Run = { child, exited: new Promise((r) => child.on('exit', (code) => r(code))), stderr: () => err };
  running.add(run);
  return run;
}

let socketCount = 0;
async function notifier(): Promise<NotifySocket> {
  const s = await notifySocket(join(dir, `notify-${++socketCount}`));
  sockets.push(s);
  return s;
}

/** The first bytes the server sends on a new TCP connection. */
function banner(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection({ host: '127.0.0.1', port }, () => undefined);
    c.once('data', (d) => {
      c.destroy();
      resolve(d.toString('latin1'));
    });
    c.once('error', reject);
  });
}

/** READY=1 from `s`, or the daemon's stderr if it exits first. */
function ready(s: NotifySocket, d: Run) {
  const died = d.exited.then((code) => Promise.reject(new Error(`daemon exited with ${code} before READY=1: ${d.stderr()}`)));
  return Promise.race([s.waitFor((m) => m.fields.READY === '1', 25_000), died]);
}

const portOf = (status: string) => Number(/listening on [^\s]+:(\d+)/.exec(status)?.[1]);
const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; !cond(); i++) {
    if (i > 600) throw new Error(`${what}: not within 15 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('sd_notify (Type=notify)', () => {
  it("a daemon started with NOTIFY_SOCKET sends READY=1 from its own pid, and the port in its STATUS already answers SSH", async () => {
    const s = await notifier();
    const d = daemon(['--config', await configFile('ready')], { NOTIFY_SOCKET: s.address });
    const r = await ready(s, d);
    expect(r.pid).toBe(d.child.pid);
    expect(r.fields.STATUS).toMatch(/^listening on 127\.0\.0\.1:\d+$/);
    expect(await banner(portOf(r.fields.STATUS!))).toMatch(/^SSH-2\.0-/);
    expect(s.received.map((m) => m.message).filter((m) => m.includes('READY=1'))).toHaveLength(1);
  });

  it('SIGHUP is bracketed by RELOADING=1 and READY=1, and SIGTERM sends STOPPING=1 before a clean exit', async () => {
    const s = await notifier();
    const d = daemon(['--config', await configFile('reload')], { NOTIFY_SOCKET: s.address });
    await ready(s, d);
    d.child.kill('SIGHUP');
    await s.waitFor((m) => /configuration reloaded/.test(m.fields.STATUS ?? ''));
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    await s.waitFor((m) => m.fields.STOPPING === '1');
    expect(s.received.map((m) => Object.keys(m.fields)[0])).toEqual(['READY', 'RELOADING', 'READY', 'STOPPING']);
    expect(s.received[1]!.fields.MONOTONIC_USEC).toMatch(/^\d+$/);
  });

  it('a refused reload (broken config) still ends with READY=1, naming the refusal', async () => {
    const s = await notifier();
    const file = await configFile('refused');
    const d = daemon(['--config', file], { NOTIFY_SOCKET: s.address });
    await ready(s, d);
    await writeFile(file, '{ "users": [ { "username": 3 } ] }');
    d.child.kill('SIGHUP');
    const after = await s.waitFor((m) => /reload refused/.test(m.fields.STATUS ?? ''));
    expect(after.fields.READY).toBe('1');
    expect(s.received.map((m) => Object.keys(m.fields)[0])).toEqual(['READY', 'RELOADING', 'READY']);
  });

  it('with "workers": 2 only the primary notifies: one READY=1, once both workers serve the port', async () => {
    const s = await notifier();
    const d = daemon(['--config', await configFile('workers', { workers: 2 })], { NOTIFY_SOCKET: s.address });
    const r = await ready(s, d);
    expect(r.pid).toBe(d.child.pid);
    expect(r.fields.STATUS).toMatch(/\(2 workers\)$/);
    expect(await banner(portOf(r.fields.STATUS!))).toMatch(/^SSH-2\.0-/);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    await s.waitFor((m) => m.fields.STOPPING === '1');
    expect(s.received.filter((m) => m.fields.READY === '1')).toHaveLength(1);
    expect(new Set(s.received.map((m) => m.pid))).toEqual(new Set([d.child.pid]));
    const starts = (await readFile(join(dir, 'workers.audit.json'), 'utf8')).split('\n').filter((l) => l.includes('"server.start"'));
    expect(starts).toHaveLength(2);
  });
});

describe('--pid-file', () => {
  it('holds the pid once the daemon listens and is removed when it exits', async () => {
    const pidFile = join(dir, 'single.pid');
    const s = await notifier();
    const d = daemon(['--config', await configFile('pid'), '--pid-file', pidFile], { NOTIFY_SOCKET: s.address });
    await ready(s, d);
    expect(await readFile(pidFile, 'utf8')).toBe(`${d.child.pid}\n`);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(existsSync(pidFile), d.stderr()).toBe(false);
  });

  it('with "workers": 2 names the primary, which removes it at exit', async () => {
    const pidFile = join(dir, 'workers.pid');
    const d = daemon(['--config', await configFile('pid-workers', { workers: 2 }), `--pid-file=${pidFile}`]);
    await until(() => existsSync(pidFile), 'pid file');
    expect(await readFile(pidFile, 'utf8')).toBe(`${d.child.pid}\n`);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(existsSync(pidFile), d.stderr()).toBe(false);
  });

  it('that cannot be written stops the daemon with exit code 1 and says why', async () => {
    const d = daemon(['--config', await configFile('pid-bad'), '--pid-file', join(dir, 'no-such-dir', 'x.pid')]);
    expect(await d.exited).toBe(1);
    expect(d.stderr()).toMatch(/cannot write the pid file: ENOENT/);
  });

  it('is listed in --help', async () => {
    expect((await runCli(['--help'], dir)).stdout).toMatch(/--pid-file PATH/);
  });
});
