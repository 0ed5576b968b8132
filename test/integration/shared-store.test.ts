/**
 * Several instances behind one Redis (config "shared"), as the README runs them behind HAProxy:
 * two in-process servers on one root enforce one session cap and one quota between them; a
 * killed instance's sessions stop counting after its lease; an unreachable store leaves each
 * instance counting alone, says so, and says when it is back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer, type TestServerOptions } from '../../src/testing.js';
import { RedisStore } from '../../src/shared/redis-store.js';
import { connect, STATUS, type SftpClient } from '../helpers/sftp-client.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function redis(): Promise<TestRedis> {
  const r = await startRedis();
  cleanups.push(() => r.close());
  return r;
}

/** Instances of one deployment: the same user, root and store; `more()` starts another. */
async function deployment(r: TestRedis, extra: Partial<TestServerOptions> & { quota?: { bytes?: number } } = {}) {
  const root = await mkdtemp(join(tmpdir(), 'sftp-shared-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const { config, ...user } = extra;
  const opts: TestServerOptions = { username: 'alice', password: 'pw', root, ...user, config: { shared: { redis: r.url, keyPrefix: `t-${randomBytes(4).toString('hex')}:` }, ...config } };
  const more = async () => {
    const s = await startTestServer(opts);
    cleanups.push(() => s.close());
    return s;
  };
  return { a: await more(), b: await more(), more };
}

async function login(s: TestServer): Promise<SftpClient> {
  const c = await connect(s);
  cleanups.push(() => c.end());
  return c;
}

describe('shared store', () => {
  it('maxSessionsPerUser holds across two instances: B refuses while A holds the session, and admits once it ends', async () => {
    const { a, b } = await deployment(await redis(), { config: { limits: { maxSessionsPerUser: 1 } } });
    const onA = await login(a);
    await expect(login(b)).rejects.toThrow();
    expect(await b.events.waitFor('request.refused', (e) => e.what === 'login')).toMatchObject({ why: 'too-many-sessions', user: 'alice' });
    await onA.end();
    await a.events.waitFor('session.close');
    await (await login(b)).stat('/');
  });

  it('two instances sharing one root enforce one quota, and a third adopts the count instead of walking', async () => {
    const { a, b, more } = await deployment(await redis(), { quota: { bytes: 1_000_000 } });
    const scans = await Promise.all([a.events.waitFor('quota.scan'), b.events.waitFor('quota.scan')]);
    // One of them walked the (empty) root; the other took the count from the store.
    expect(scans.filter((e) => /from the shared store/.test(e.message))).toHaveLength(1);
    await (await login(a)).writeFile('/a.bin', Buffer.alloc(600_000, 1));
    const err = await (await login(b)).writeFile('/b.bin', Buffer.alloc(600_000, 2)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: STATUS.FAILURE });
    expect(await b.events.waitFor('transfer', (t) => t.path === '/b.bin')).toMatchObject({ status: 'error', error: 'quota' });
    // B's df shows A's upload.
    const vfs = await (await login(b)).statvfs('/');
    expect((vfs['f_blocks']! - vfs['f_bfree']!) * vfs['f_frsize']!).toBeGreaterThanOrEqual(600_000);
    const c = await more();
    expect(await c.events.waitFor('quota.scan')).toMatchObject({ bytes: 600_000, message: expect.stringMatching(/from the shared store \(counted before\)/) });
  });

  it("a killed instance's session stops counting after leaseSeconds", async () => {
    const r = await redis();
    const keyPrefix = `t-${randomBytes(4).toString('hex')}:`;
    const dist = fileURLToPath(new URL('../../dist/shared/redis-store.js', import.meta.url));
    const script = `const { RedisStore } = await import(${JSON.stringify(dist)}); const s = new RedisStore({ redis: ${JSON.stringify(r.url)}, keyPrefix: ${JSON.stringify(keyPrefix)}, leaseSeconds: 1 }, { emit() {} }); await s.connect(); console.log(await s.acquireSession('alice', 'one', 1)); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(async () => child.kill('SIGKILL'));
    const first = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(String(d).trim())));
    expect(first).toBe('true');
    child.kill('SIGKILL');
    const store = new RedisStore({ redis: r.url, keyPrefix, leaseSeconds: 1 }, { emit: () => undefined });
    cleanups.push(() => store.close());
    await store.connect();
    expect(await store.acquireSession('alice', 'two', 1)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await store.acquireSession('alice', 'two', 1)).toBe(true);
  });

  it('instances moving bytes under one limit are counted together, each once, and drop out when idle', async () => {
    const r = await redis();
    const keyPrefix = `t-${randomBytes(4).toString('hex')}:`;
    const [one, two] = [0, 1].map(() => new RedisStore({ redis: r.url, keyPrefix, leaseSeconds: 30 }, { emit: () => undefined }));
    for (const s of [one!, two!]) {
      cleanups.push(() => s.close());
      await s.connect();
    }
    expect(await one!.activeInstances(['user:a:upload'], 300)).toEqual([1]);
    expect(await two!.activeInstances(['user:a:upload', 'user:b:upload'], 300)).toEqual([2, 1]);
    expect(await one!.activeInstances(['user:a:upload'], 300)).toEqual([2]);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await one!.activeInstances(['user:a:upload'], 300)).toEqual([1]);
  });

  it('an unreachable store: logins still work on each instance, a warning says so, and another when it is back', async () => {
    const r = await redis();
    const { a, b } = await deployment(r, { config: { limits: { maxSessionsPerUser: 1 } } });
    await r.stop();
    await (await login(a)).stat('/');
    // Alone, each instance applies the cap to its own sessions.
    await (await login(b)).stat('/');
    expect(await a.events.waitFor('server.warning', (w) => w.code === 'shared-store-unreachable')).toMatchObject({ level: 'warn' });
    await r.start();
    await a.events.waitFor('server.warning', (w) => w.code === 'shared-store-back', { timeout: 5000 });
  });
});
