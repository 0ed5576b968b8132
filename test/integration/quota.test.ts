/**
 * Quotas (src/quota/, src/server/quota.ts) through a real server: refusals with the message and
 * transfer record an operator can read, usage kept equal to an independent walk of the root
 * (test/helpers/du.ts) through every kind of change and after a restart, df in OpenSSH's sftp.
 * Usage is read where an operator reads it: /metrics.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer, type TestServerOptions } from '../../src/testing.js';
import { connect, OPEN, STATUS, type SftpClient } from '../helpers/sftp-client.js';
import { sftpBatch } from '../helpers/openssh.js';
import { du } from '../helpers/du.js';

const admin = { admin: { listen: { host: '127.0.0.1', port: 0 } } };
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server whose quota walks have ended, and a connected client. */
async function serve(opts: TestServerOptions): Promise<{ s: TestServer; c: SftpClient }> {
  const s = await startTestServer({ ...opts, config: { ...admin, ...opts.config } });
  cleanups.push(() => s.close());
  await s.events.waitFor('quota.scan');
  const c = await connect(s);
  cleanups.push(() => c.end());
  return { s, c };
}

async function scrape(s: TestServer): Promise<string> {
  return (await fetch(`http://127.0.0.1:${s.server.adminPort}/metrics`)).text();
}

/** The user's usage as /metrics shows it. */
async function usage(s: TestServer, user = s.username): Promise<{ bytes: number; files: number }> {
  const text = await scrape(s);
  const read = (name: string) => Number(new RegExp(`^${name}\\{user="${user}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
  return { bytes: read('sftp_quota_used_bytes'), files: read('sftp_quota_used_files') };
}

/**
 * OPEN, one WRITE, CLOSE; the first failure's message, or undefined. (The test client's writeFile
 * reports the CLOSE's error, which for a staged upload only says it was not published.)
 */
async function upload(c: SftpClient, path: string, data: Buffer | string): Promise<string | undefined> {
  let h: Buffer;
  try {
    h = await c.open(path, OPEN.WRITE | OPEN.CREAT | OPEN.TRUNC);
  } catch (e) {
    return (e as Error).message;
  }
  const failed = await c.write(h, 0, data).then(() => undefined, (e: Error & { code?: number }) => `${e.message} (status ${e.code})`);
  const closeFailed = await c.close(h).then(() => undefined, (e: Error) => e.message);
  return failed ?? closeFailed;
}

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

describe('quotas', () => {
  it('refuses a WRITE past the byte quota with "Quota exceeded", and the transfer record says quota', async () => {
    const { s, c } = await serve({ quota: { bytes: 1000 } });
    expect(await upload(c, '/big.bin', Buffer.alloc(2000))).toBe(`write(handle): Quota exceeded (status ${STATUS.FAILURE})`);
    const t = await s.events.waitFor((e) => e.event === 'transfer' && e.path === '/big.bin');
    expect(t).toMatchObject({ status: 'error', sftpStatus: 'FAILURE', message: 'Quota exceeded', error: 'quota' });
    expect(await s.exists('/big.bin'), 'the atomic upload was not published').toBe(false);
    expect(await usage(s), 'the discarded staging file is not counted').toEqual({ bytes: 0, files: 0 });
    await c.writeFile('/fits.bin', Buffer.alloc(1000));
    expect(await usage(s)).toEqual(await du(s.root));
  });

  it('OpenSSH sftp reports the refused upload as a failure and df -h shows the quota as the size', async () => {
    const { s } = await serve({ quota: { bytes: 10 * 1024 * 1024, files: 1000 } });
    const local = await tempDir('quota-local-');
    await writeFile(join(local, 'one.bin'), Buffer.alloc(1024 * 1024));
    await writeFile(join(local, 'big.bin'), Buffer.alloc(11 * 1024 * 1024));
    const put = await sftpBatch(s, ['put one.bin /one.bin', 'put big.bin /big.bin'], { cwd: local });
    expect(put.code).not.toBe(0);
    expect(put.stderr, 'OpenSSH prints the status, not the message').toContain('write remote "/big.bin": Failure');
    const df = await sftpBatch(s, ['df -h /']);
    expect(df.code).toBe(0);
    // "    Size     Used    Avail   (root)    %Capacity" then the figures.
    const [size, used, avail] = df.stdout.trim().split('\n').at(-1)!.trim().split(/\s+/);
    expect([size, used, avail]).toEqual(['10.0MB', '1.0MB', '9.0MB']);
    const dfi = await sftpBatch(s, ['df -i /']);
    expect(dfi.stdout.trim().split('\n').at(-1)!.trim().split(/\s+/).slice(0, 3)).toEqual(['1000', '1', '999']);
  });

  it('keeps usage equal to a walk of the root through every kind of change, and a restart finds the same', async () => {
    const root = await tempDir('quota-root-');
    const quota = { bytes: 50 * 1024 * 1024 };
    const { s, c } = await serve({ root, quota });
    const exact = async (why: string) => expect(await usage(s), why).toEqual(await du(root));
    await c.writeFile('/a', Buffer.alloc(1000, 1));
    await c.writeFile('/b', Buffer.alloc(5000, 2));
    await c.writeFile('/a', Buffer.alloc(300, 3));
    await exact('uploads and an overwrite');
    await c.setstat('/b', { size: 100 });
    await exact('truncated');
    const h = await c.open('/b', OPEN.WRITE);
    await c.write(h, 20_000, 'tail');
    await c.fsetstat(h, { size: 30_000 });
    await c.close(h);
    await exact('extended by a write past the end and by FSETSTAT');
    await c.mkdir('/d');
    await c.hardlink('/a', '/d/a2');
    await c.remove('/a');
    await exact('a hard link, then one of its names removed');
    await c.posixRename('/b', '/d/a2');
    await exact('posix-rename over the last name of a file');
    await c.symlink('/d/a2', '/d/link');
    await c.mkdir('/e');
    await c.rmdir('/e');
    await exact('symlink, mkdir, rmdir');
    const cp = await sftpBatch(s, ['cp /d/a2 /d/copy', 'mkdir /f', 'rmdir /f']);
    expect(cp.code, cp.stderr).toBe(0);
    await exact('copy-data (sftp cp)');
    const before = await usage(s);
    await s.close();
    const again = await startTestServer({ root, quota, config: admin });
    cleanups.push(() => again.close());
    expect(await again.events.waitFor('quota.scan')).toMatchObject({ users: [again.username], ...before });
    expect(await usage(again)).toEqual(before);
  });

  it('refuses a new file or directory when the files quota is full, and allows overwriting one', async () => {
    const { s, c } = await serve({ quota: { files: 2 } });
    await c.writeFile('/a', 'one');
    await c.writeFile('/b', 'two');
    expect(await upload(c, '/c', 'three')).toContain('Quota exceeded');
    expect(await c.mkdir('/d').catch((e: Error) => e.message)).toContain('Quota exceeded');
    await c.writeFile('/a', 'overwritten');
    expect(String(await s.readFile('/a'))).toBe('overwritten');
    expect(await usage(s)).toEqual({ bytes: 'overwritten'.length + 3, files: 2 });
  });

  it('an atomic upload that would pass the quota fails and leaves the old file as it was', async () => {
    const { s, c } = await serve({ quota: { bytes: 10_000 } });
    const old = Buffer.alloc(6000, 7);
    await c.writeFile('/f', old);
    // The staged copy and the old file are both on the disk until the rename: 12,000 bytes.
    expect(await upload(c, '/f', Buffer.alloc(6000, 8))).toContain('Quota exceeded');
    expect((await s.readFile('/f')).equals(old)).toBe(true);
    expect(await usage(s)).toEqual({ bytes: 6000, files: 1 });
    await c.writeFile('/f', Buffer.alloc(3000, 9));
    expect(await usage(s), 'the replaced file is freed at the rename').toEqual({ bytes: 3000, files: 1 });
  });

  it('applies a quota changed by a reload to a session already open', async () => {
    const { s, c } = await serve({ quota: { bytes: 100_000 } });
    const h = await c.open('/f', OPEN.WRITE | OPEN.CREAT | OPEN.TRUNC);
    await c.write(h, 0, Buffer.alloc(1000));
    const cfg = s.server.config;
    await s.server.reload({ ...cfg, users: cfg.users.map((u) => ({ ...u, quota: { bytes: 1500 } })) });
    expect(await c.write(h, 1000, Buffer.alloc(1000)).catch((e: Error) => e.message)).toContain('Quota exceeded');
    await c.write(h, 1000, Buffer.alloc(500));
    await c.close(h).catch(() => undefined);
    expect((await scrape(s)).match(/^sftp_quota_limit_bytes\{user="tester"\} (\d+)$/m)?.[1]).toBe('1500');
  });

  it('shares one count between users of one root, and shows only users with a quota in /metrics', async () => {
    const root = await tempDir('quota-shared-');
    const { s, c } = await serve({ users: [{ username: 'limited', root, quota: { bytes: 10_000 } }, { username: 'free', root }] });
    const other = await connect({ ...s.connectOptions, username: 'free', password: s.users[1]!.password });
    cleanups.push(() => other.end());
    await other.writeFile('/from-free', Buffer.alloc(9000));
    expect(await upload(c, '/from-limited', Buffer.alloc(2000))).toContain('Quota exceeded');
    expect(await usage(s, 'limited')).toEqual({ bytes: 9000, files: 1 });
    expect(await scrape(s)).not.toMatch(/user="free"/);
    await readFile(join(root, 'from-free'));
  });
});

describe('quotas with per-folder rules', () => {
  it('copy-data (sftp cp) works through both layers, counts the copy, and the rules still refuse what they refuse', async () => {
    const { s } = await serve({
      quota: { bytes: 10_000 },
      folders: { '/inbox': ['list', 'upload'], '/outbox': ['list', 'download'] },
      files: { 'outbox/report.csv': 'x'.repeat(3000), 'inbox/': null },
    });
    const cp = await sftpBatch(s, ['cp /outbox/report.csv /inbox/copy.csv']);
    expect(cp.code, cp.stderr).toBe(0);
    expect(String(await s.readFile('/inbox/copy.csv'))).toBe('x'.repeat(3000));
    const refused = await sftpBatch(s, ['cp /inbox/copy.csv /outbox/again.csv']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Permission denied/);
    // 3,000 bytes in /outbox and the 3,000-byte copy; the refused copy added nothing.
    expect((await usage(s)).bytes).toBe(6_000);
  });
});
