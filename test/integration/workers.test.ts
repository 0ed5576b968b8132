import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, mkdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { startDaemon, type Daemon } from '../helpers/cli.js';
import { connect } from '../helpers/sftp-client.js';

let dir: string;
let d: Daemon;
const audit = async () =>
  (await readFile(join(dir, 'audit.json'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const until = async (cond: () => Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
};
const opts = () => ({ host: '127.0.0.1', port: d.port, username: 'w', password: 'pw', hostVerifier: () => true });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sftp-workers-'));
  await mkdir(join(dir, 'root'));
  await writeFile(join(dir, 'root', 'data.bin'), randomBytes(2 * 1024 * 1024));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      workers: 2,
      passwordCost: 10,
      users: [{ username: 'w', password: 'pw', root: 'root', maxSessions: 6 }],
      log: { file: 'audit.json' },
      limits: { penalty: { threshold: 4, authFailSeconds: 30 } },
      admin: { listen: { host: '127.0.0.1', port: 0 } },
    }),
  );
  d = await startDaemon(['--config', 'config.json'], dir);
});
afterAll(async () => {
  d.child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('workers: 2', () => {
  it('serves from both workers and logs exactly one record per transfer', async () => {
    expect(d.stderr()).toMatch(/2 workers/);
    const clients = await Promise.all(Array.from({ length: 6 }, () => connect(opts())));
    await Promise.all(clients.map(async (c, i) => {
      expect((await c.readFile('/data.bin')).length).toBe(2 * 1024 * 1024);
      await c.writeFile(`/up-${i}.bin`, randomBytes(100_000));
    }));
    await Promise.all(clients.map((c) => c.end()));
    await until(async () => (await audit()).filter((e) => e.event === 'session.close').length >= 6);
    const records = await audit();
    const transfers = records.filter((e) => e.event === 'transfer');
    expect(transfers).toHaveLength(12);
    for (let i = 0; i < 6; i++) expect(transfers.filter((t) => t.path === `/up-${i}.bin` && t.bytesWritten === 100_000 && t.status === 'complete')).toHaveLength(1);
    expect(transfers.filter((t) => t.path === '/data.bin' && t.bytesRead === 2 * 1024 * 1024)).toHaveLength(6);
    expect(new Set(records.filter((e) => e.event === 'session.open').map((e) => e.worker))).toEqual(new Set([1, 2]));
  });

  it('maxSessions holds for the whole daemon, not per worker', async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => connect(opts())));
    await expect(connect(opts())).rejects.toThrow();
    await until(async () => (await audit()).some((e) => e.event === 'request.refused' && e.why === 'too-many-sessions'));
    await Promise.all(clients.map((c) => c.end()));
  });

  it('/metrics aggregates both workers', async () => {
    const port = Number(/admin http:\/\/127\.0\.0\.1:(\d+)/.exec(d.stderr())?.[1]);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('sftp_logins_total{') && l.includes('outcome="success"'));
    expect(Number(line?.split(' ').at(-1))).toBe(12);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('penalties follow an address across workers', async () => {
    const fail = () =>
      new Promise<void>((resolve) => {
        const c = new ssh2.Client();
        c.on('error', () => resolve());
        c.on('close', () => resolve());
        c.connect({ host: '127.0.0.1', port: d.port, username: 'w', password: 'wrong', tryKeyboard: false });
      });
    for (let i = 0; i < 4; i++) await fail();
    await until(async () => (await audit()).some((e) => e.event === 'request.refused' && e.why === 'penalty'));
    // Whichever worker takes the next connections refuses them.
    for (let i = 0; i < 4; i++) await expect(connect(opts())).rejects.toThrow();
    const refusedBy = async () => new Set((await audit()).filter((e) => e.event === 'request.refused' && e.why === 'penalty' && e.what === 'connection').map((e) => e.worker));
    // The audit file is written in batches (up to 100 ms): wait for both workers' records.
    await until(async () => (await refusedBy()).size === 2).catch(() => undefined);
    expect((await refusedBy()).size).toBe(2);
  });

  it('SIGTERM stops every worker and the daemon exits 0', async () => {
    expect(await d.stop('SIGTERM')).toBe(0);
  });
});
