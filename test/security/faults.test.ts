import { describe, it, expect, afterAll } from 'vitest';
import { readdirSync, statSync, mkdirSync, renameSync, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { connect } from '../helpers/sftp-client.js';
import { startDaemon } from '../helpers/cli.js';
import type { AuditRecord } from '../../src/index.js';

const fds = () => readdirSync('/proc/self/fd').length;
const settle = (ms = 200) => new Promise((r) => setTimeout(r, ms));
type Transfer = Extract<AuditRecord, { event: 'transfer' }>;

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function server(opts: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const s = await startTestServer(opts);
  cleanup.push(() => s.close());
  return s;
}

describe('faults: a precise status, a log record, no leaked descriptor, nothing acknowledged lost', () => {
  it('a client killed mid-download leaves an incomplete record and no open descriptor', async () => {
    const s = await server({ files: { 'd.bin': randomBytes(8 * 1024 * 1024) } });
    await (await connect(s)).end(); // the user's root fd is opened on first use: not a leak
    await settle();
    const base = fds();
    s.faults.bytesPerSecond = 8 * 1024 * 1024;
    const c = await connect(s);
    const handle = await c.open('/d.bin', 1);
    for (let off = 0; off < 1024 * 1024; off += 65536) await c.read(handle, off, 65536);
    (c.conn as unknown as { _sock: import('node:net').Socket })._sock.destroy();
    const t = (await s.events.waitFor((e) => e.event === 'transfer' && e.path === '/d.bin')) as Transfer;
    expect(t).toMatchObject({ status: 'incomplete', bytesRead: 1024 * 1024, direction: 'download' });
    await settle();
    expect(fds()).toBeLessThanOrEqual(base);
  });

  it('a network cut mid-upload (atomicUploads false) keeps every acknowledged byte on disk and logs it incomplete', async () => {
    const s = await server({ atomicUploads: false });
    await (await connect(s)).end();
    await settle();
    const base = fds();
    const c = await connect(s);
    const handle = await c.open('/u.bin', 0x1a); // WRITE|CREAT|TRUNC
    const chunk = randomBytes(32768);
    let acked = 0;
    for (let i = 0; i < 64; i++) {
      await c.write(handle, i * chunk.length, chunk);
      acked += chunk.length;
    }
    // More writes in flight, then the wire is cut.
    for (let i = 64; i < 96; i++) void c.write(handle, i * chunk.length, chunk).catch(() => undefined);
    (c.conn as unknown as { _sock: import('node:net').Socket })._sock.destroy();
    const t = (await s.events.waitFor((e) => e.event === 'transfer' && e.path === '/u.bin')) as Transfer;
    expect(t.status).toBe('incomplete');
    const onDisk = statSync(join(s.root, 'u.bin')).size;
    expect(onDisk).toBeGreaterThanOrEqual(acked);
    expect(t.bytesWritten).toBe(onDisk);
    await settle();
    expect(fds()).toBeLessThanOrEqual(base);
  });

  it('a network cut mid-upload of an atomic upload leaves the previous content under the name and no staging file', async () => {
    const s = await server({ files: { 'u.bin': 'previous content\n' } });
    const c = await connect(s);
    const handle = await c.open('/u.bin', 0x1a); // WRITE|CREAT|TRUNC
    const chunk = randomBytes(32768);
    for (let i = 0; i < 64; i++) await c.write(handle, i * chunk.length, chunk);
    for (let i = 64; i < 96; i++) void c.write(handle, i * chunk.length, chunk).catch(() => undefined);
    (c.conn as unknown as { _sock: import('node:net').Socket })._sock.destroy();
    const t = (await s.events.waitFor((e) => e.event === 'transfer' && e.path === '/u.bin')) as Transfer;
    expect(t).toMatchObject({ status: 'incomplete', atomic: true });
    expect(t.bytesWritten).toBeGreaterThanOrEqual(64 * chunk.length);
    expect(String(await s.readFile('/u.bin'))).toBe('previous content\n');
    expect(readdirSync(s.root)).toEqual(['u.bin']);
  });

  it('a full disk answers FAILURE, logs an error transfer, and other sessions go on', async () => {
    const mnt = await mkdtemp(join(tmpdir(), 'sftp-full-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).status === 0;
    cleanup.push(async () => {
      if (mounted) spawnSync('umount', [mnt]);
      await rm(mnt, { recursive: true, force: true });
    });
    const s = await server({ root: mnt, files: { 'ok.txt': 'fine' } });
    // Without a mount (not root), the fault seam produces the same ENOSPC the kernel would.
    if (!mounted) s.faults.diskFull = true;
    const c = await connect(s);
    const other = await connect(s);
    const err = await c.writeFile('/big.bin', randomBytes(2 * 1024 * 1024)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 4 }); // FAILURE, as OpenSSH sends for ENOSPC
    const t = (await s.events.waitFor((e) => e.event === 'transfer' && e.path === '/big.bin')) as Transfer;
    expect(t).toMatchObject({ status: 'error', sftpStatus: 'FAILURE' });
    s.faults.diskFull = false;
    expect(String(await other.readFile('/ok.txt'))).toBe('fine');
    // The atomic upload was not published, and its staging file is gone: the space is free again.
    expect(await s.exists('/big.bin')).toBe(false);
    expect(readdirSync(s.root).sort()).toEqual(['ok.txt']);
    await c.writeFile('/small.txt', 'x');
    await Promise.all([c.end(), other.end()]);
  });

  it('a root removed while in use gives clear statuses, not a crash or a path outside', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'sftp-gone-'));
    const root = join(parent, 'root');
    mkdirSync(root);
    await writeFile(join(root, 'a.txt'), 'a');
    cleanup.push(() => rm(parent, { recursive: true, force: true }));
    const s = await server({ root });
    const c = await connect(s);
    expect(String(await c.readFile('/a.txt'))).toBe('a');
    renameSync(root, join(parent, 'moved-away'));
    execFileSync('rm', ['-rf', join(parent, 'moved-away')]);
    await expect(c.readFile('/a.txt')).rejects.toMatchObject({ code: 2 });
    await expect(c.writeFile('/new.txt', 'x')).rejects.toMatchObject({ code: 2 });
    expect(existsSync(join(parent, 'new.txt'))).toBe(false);
    // The root itself is gone: even "." has no path any more, and the session still answers.
    await expect(c.realpath('.')).rejects.toMatchObject({ code: 2 });
    await expect(c.stat('/')).resolves.toBeDefined();
    await c.end();
  });

  it('running out of file descriptors (EMFILE) answers FAILURE and recovers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sftp-emfile-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'root'));
    await writeFile(join(dir, 'root', 'f.txt'), 'f');
    await writeFile(join(dir, 'c.json'), JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, keysDir: 'keys', users: [{ username: 'e', password: 'x', root: 'root' }], limits: { maxHandlesPerSession: 10000 } }));
    // Room for start-up: Node's ESM loader opens a module graph's files concurrently (zod's ~50
    // locales among them), and 120 descriptors were sometimes not enough before the daemon listened.
    const d = await startDaemon(['--config', 'c.json'], dir, 15000, ['prlimit', '--nofile=256:256', '--']);
    cleanup.push(async () => void (await d.stop('SIGKILL')));
    const c = await connect({ host: '127.0.0.1', port: d.port, username: 'e', password: 'x', hostVerifier: () => true });
    const handles: Buffer[] = [];
    let failure: unknown;
    for (let i = 0; i < 600 && !failure; i++) {
      try {
        handles.push(await c.open('/f.txt', 1));
      } catch (e) {
        failure = e;
      }
    }
    expect(failure).toMatchObject({ code: 4 });
    for (const h of handles) await c.close(h);
    expect(String(await c.readFile('/f.txt'))).toBe('f');
    await c.end();
    expect(await d.stop('SIGTERM')).toBe(0);
  });
});
