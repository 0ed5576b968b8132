/**
 * Bandwidth limits through a real server and ssh2's client (fastPut/fastGet keep 64 requests in
 * flight, as OpenSSH's sftp does). The limits wait on a simulated clock (test/helpers/fake-clock.ts)
 * that jumps to each timer as soon as the server is idle: transfers run at full speed, and the
 * simulated seconds they took show the configured rate without any wall-clock measurement.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { SFTPWrapper } from 'ssh2';
import { startTestServer, type TestServer } from '../../src/testing.js';
import type { ServerConfig } from '../../src/config/load.js';
import { ManualClock, SimulatedClock } from '../helpers/fake-clock.js';
import { until } from '../helpers/upload-watch.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const DATA = randomBytes(4 * MiB);

let local: string;
beforeAll(async () => {
  local = await mkdtemp(join(tmpdir(), 'bandwidth-'));
  await writeFile(join(local, 'data.bin'), DATA);
});
afterAll(() => rm(local, { recursive: true, force: true }));

interface Session {
  sftp: SFTPWrapper;
  end(): void;
}

async function login(s: TestServer, username: string): Promise<Session> {
  const user = s.users.find((u) => u.username === username)!;
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({ ...s.connectOptions, username, password: user.password });
  });
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, w) => (err ? reject(err) : resolve(w))));
  return { sftp, end: () => client.end() };
}

const put = (c: Session, remote: string) => new Promise<void>((resolve, reject) => c.sftp.fastPut(join(local, 'data.bin'), remote, (err) => (err ? reject(err) : resolve())));
const get = (c: Session, remote: string, to: string) => new Promise<void>((resolve, reject) => c.sftp.fastGet(remote, join(local, to), (err) => (err ? reject(err) : resolve())));

/** Simulated seconds `transfer` took. */
async function simulated(clock: SimulatedClock, transfer: () => Promise<void>): Promise<number> {
  const start = clock.now();
  await transfer();
  return (clock.now() - start) / 1000;
}

/** Within ±10 % of moving `bytes` at `rate`. */
function expectRate(seconds: number, bytes: number, rate: number): void {
  expect(seconds).toBeGreaterThanOrEqual((bytes / rate) * 0.9);
  expect(seconds).toBeLessThanOrEqual((bytes / rate) * 1.1);
}

describe('per-user bandwidth limits', () => {
  let s: TestServer;
  const clock = new SimulatedClock();

  beforeAll(async () => {
    s = await startTestServer({
      users: [
        { username: 'slow', bandwidth: { uploadBytesPerSecond: '1MiB', downloadBytesPerSecond: 2 * MiB }, files: { 'data.bin': DATA } },
        { username: 'free', files: { 'data.bin': DATA } },
      ],
      config: { admin: { listen: { host: '127.0.0.1', port: 0 } } },
      bandwidthClock: clock,
    });
  });
  afterAll(() => s?.close());

  it('a limited upload arrives byte-exact, at the configured rate', async () => {
    const c = await login(s, 'slow');
    const seconds = await simulated(clock, () => put(c, '/up.bin'));
    c.end();
    expect(sha(await s.readFile('/up.bin', 'slow'))).toBe(sha(DATA));
    expectRate(seconds, DATA.length, MiB);
  });

  it('a limited download arrives byte-exact, at the configured rate', async () => {
    const c = await login(s, 'slow');
    const seconds = await simulated(clock, () => get(c, '/data.bin', 'down.bin'));
    c.end();
    expect(sha(await readFile(join(local, 'down.bin')))).toBe(sha(DATA));
    expectRate(seconds, DATA.length, 2 * MiB);
  });

  it("two sessions of one user share the user's rate", async () => {
    const [a, b] = [await login(s, 'slow'), await login(s, 'slow')];
    const seconds = await simulated(clock, () => Promise.all([put(a, '/a.bin'), put(b, '/b.bin')]).then(() => undefined));
    a.end();
    b.end();
    expectRate(seconds, 2 * DATA.length, MiB);
  });

  it('a user without a limit never waits on it', async () => {
    const c = await login(s, 'free');
    const seconds = await simulated(clock, async () => {
      await put(c, '/up.bin');
      await get(c, '/data.bin', 'free.bin');
    });
    c.end();
    expect(seconds).toBe(0);
    expect(clock.pending).toBe(0);
    expect(sha(await s.readFile('/up.bin', 'free'))).toBe(sha(DATA));
  });

  it('reports the time requests waited in /metrics, by direction', async () => {
    const text = await (await fetch(`http://127.0.0.1:${s.server.adminPort}/metrics`)).text();
    const waited = (d: string) => Number(new RegExp(`^sftp_bandwidth_wait_seconds_total\\{direction="${d}"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(waited('upload')).toBeGreaterThan(0);
    expect(waited('download')).toBeGreaterThan(0);
  });

  it('a reload changes the rate for the next transfer', async () => {
    const now = s.server.config;
    const users = now.users.map((u) => (u.username === 'slow' ? { ...u, bandwidth: { uploadBytesPerSecond: 4 * MiB } } : u));
    await s.server.reload({ ...now, users } as ServerConfig);
    const c = await login(s, 'slow');
    const up = await simulated(clock, () => put(c, '/up.bin'));
    const down = await simulated(clock, () => get(c, '/data.bin', 'after.bin'));
    c.end();
    expectRate(up, DATA.length, 4 * MiB);
    // The download limit was lifted with the rest of the old setting.
    expect(down).toBe(0);
  });
});

describe('server-wide bandwidth limit', () => {
  it('limits.bandwidth holds users without a limit of their own', async () => {
    const clock = new SimulatedClock();
    await using s = await startTestServer({ config: { limits: { bandwidth: { downloadBytesPerSecond: '3MiB' } } }, files: { 'data.bin': DATA }, bandwidthClock: clock });
    const c = await login(s, s.username);
    const seconds = await simulated(clock, () => get(c, '/data.bin', 'server.bin'));
    c.end();
    expect(sha(await readFile(join(local, 'server.bin')))).toBe(sha(DATA));
    expectRate(seconds, DATA.length, 3 * MiB);
  });
});

describe('a session that ends while throttled', () => {
  it('leaves no request waiting: the upload is logged incomplete and no timer is left', async () => {
    // Time never moves: without the session's end releasing them, its WRITEs would wait forever.
    const clock = new ManualClock();
    await using s = await startTestServer({ bandwidth: { uploadBytesPerSecond: 1024 }, bandwidthClock: clock });
    const c = await login(s, s.username);
    void put(c, '/cut.bin').catch(() => undefined);
    await until('the upload waits for the limit', () => clock.pending === 1);
    c.end();
    const transfer = await s.events.waitFor('transfer', { timeout: 5000 });
    expect(transfer.status).toBe('incomplete');
    expect(clock.pending).toBe(0);
  });
});
