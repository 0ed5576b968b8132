import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, readFile, stat, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { STAGING_PREFIX } from '../../src/sftp/staged-upload.js';
import { clientFiles, sftpBatch, sftpPassword, sshOptions, run } from '../helpers/openssh.js';
import type { AuditRecord } from '../../src/index.js';

let s: TestServer;
let local: string;
let logs: string;

const readJson = async (): Promise<AuditRecord[]> =>
  (await readFile(join(logs, 'audit.json'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);
const settle = () => new Promise((r) => setTimeout(r, 300));

beforeAll(async () => {
  local = await mkdtemp(join(tmpdir(), 'audit-local-'));
  logs = await mkdtemp(join(tmpdir(), 'audit-logs-'));
  s = await startTestServer({
    files: { 'down.bin': randomBytes(700_000) },
    config: {
      serverName: 'audit-test',
      log: { file: join(logs, 'audit.json'), xferlog: join(logs, 'xferlog'), authLog: join(logs, 'auth.log'), hashUploads: 'sha256' },
    },
  });
});
afterAll(async () => {
  await s.close();
  await rm(local, { recursive: true, force: true });
  await rm(logs, { recursive: true, force: true });
});

describe('audit log', () => {
  it('records every action of an OpenSSH session once, with bytes, statuses and hashes', async () => {
    const up = randomBytes(1_000_000);
    await writeFile(join(local, 'up.bin'), up);
    await writeFile(join(local, 'resume.bin'), up);
    await s.writeFile('/resume.bin', up.subarray(0, 300_000));
    await writeFile(join(local, 'reget.bin'), (await s.readFile('/down.bin')).subarray(0, 200_000));
    const r = await sftpBatch(
      s,
      ['put up.bin /up.bin', 'get /down.bin down.bin', 'reput resume.bin /resume.bin', 'reget /down.bin reget.bin', 'rename /up.bin /moved.bin', 'chmod 600 /moved.bin', 'mkdir /d', 'rmdir /d', 'rm /moved.bin'],
      { cwd: local },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await settle();
    const recs = (await readJson()).filter((e) => 'sessionId' in e && e.sessionId === (s.events.all.findLast((x) => x.event === 'session.close') as { sessionId: string }).sessionId);
    const kinds = recs.map((e) => e.event);
    expect(kinds.filter((k) => k === 'transfer')).toHaveLength(4);
    for (const k of ['rename', 'setstat', 'mkdir', 'rmdir', 'remove', 'auth.success', 'session.open', 'session.close']) expect(kinds.filter((x) => x === k), k).toHaveLength(1);

    const t = recs.filter((e): e is Extract<AuditRecord, { event: 'transfer' }> => e.event === 'transfer');
    const put = t.find((e) => e.path === '/up.bin')!;
    expect(put).toMatchObject({ direction: 'upload', bytesWritten: 1_000_000, bytesRead: 0, firstOffset: 0, highestOffset: 1_000_000, status: 'complete', server: 'audit-test', user: s.username });
    expect(put.sha256).toBe(createHash('sha256').update(up).digest('hex'));
    const get = t.find((e) => e.path === '/down.bin' && e.firstOffset === 0)!;
    expect(get).toMatchObject({ direction: 'download', bytesRead: 700_000, status: 'complete' });
    const reput = t.find((e) => e.path === '/resume.bin')!;
    expect(reput).toMatchObject({ direction: 'upload', bytesWritten: 700_000, firstOffset: 300_000, highestOffset: 1_000_000, startSize: 300_000, status: 'complete' });
    expect(reput.sha256).toBeUndefined();
    // OpenSSH's reput opens with APPEND; either way no hash is claimed for a partial file.
    expect(reput.sha256Skipped).toMatch(/opened for append|first write not at offset 0/);
    const reget = t.find((e) => e.path === '/down.bin' && e.firstOffset === 200_000)!;
    expect(reget).toMatchObject({ direction: 'download', bytesRead: 500_000, status: 'complete' });
    expect(recs.find((e) => e.event === 'rename')).toMatchObject({ from: '/up.bin', to: '/moved.bin', ok: true });
    expect(recs.find((e) => e.event === 'setstat')).toMatchObject({ path: '/moved.bin', changes: { mode: '0600' }, ok: true });
    const close = recs.find((e) => e.event === 'session.close') as Extract<AuditRecord, { event: 'session.close' }>;
    expect(close.totals).toMatchObject({ filesUp: 2, filesDown: 2, bytesIn: 1_700_000, bytesOut: 1_200_000 });
    for (const e of recs) expect(e).toMatchObject({ time: expect.any(String), level: expect.any(String), server: 'audit-test', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
  });

  it('a client killed in the middle of a 64 MiB upload leaves one incomplete record and no partial file (atomic upload)', async () => {
    await writeFile(join(local, 'big.bin'), randomBytes(64 * 1024 * 1024));
    s.faults.bytesPerSecond = 16 * 1024 * 1024; // slow enough to kill it half-way
    const files = await clientFiles(s);
    const child = spawn('sftp', [...sshOptions(files), '-P', String(s.port), '-b', '-', `${s.username}@127.0.0.1`], { cwd: local, stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.end('put big.bin /big.bin\n');
    // The upload is written under a hidden staging name until the client closes it.
    const staged = async () => {
      const name = (await readdir(s.root)).find((n) => n.startsWith(STAGING_PREFIX));
      return name === undefined ? 0 : (await stat(join(s.root, name)).then((x) => x.size, () => 0));
    };
    try {
      for (let i = 0; i < 200 && (await staged()) <= 8 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 25));
      child.kill('SIGKILL');
      const rec = await s.events.waitFor('transfer', (e) => e.path === '/big.bin', { timeout: 10_000 });
      expect(rec.status).toBe('incomplete');
      expect(rec.atomic).toBe(true);
      expect(rec.bytesWritten).toBeGreaterThan(8 * 1024 * 1024);
      expect(rec.bytesWritten).toBeLessThan(64 * 1024 * 1024);
      expect(rec.sha256).toBeUndefined();
      expect(rec.sha256Skipped).toBe('transfer incomplete');
      expect(existsSync(join(s.root, 'big.bin')), 'no partial file under the final name').toBe(false);
      expect((await readdir(s.root)).filter((n) => n.startsWith(STAGING_PREFIX))).toEqual([]);
      await settle();
      expect((await readJson()).filter((e) => e.event === 'transfer' && e.path === '/big.bin')).toHaveLength(1);
    } finally {
      s.faults.bytesPerSecond = 0;
      await files.cleanup();
    }
  });

  it('writes one 14-field xferlog line per transfer, with spaces in names written as "_"', async () => {
    await writeFile(join(local, 'with space.txt'), 'hello');
    const r = await sftpBatch(s, ['put "with space.txt" "/with space.txt"'], { cwd: local });
    expect(r.code).toBe(0);
    await settle();
    const lines = (await readFile(join(logs, 'xferlog'), 'utf8')).trim().split('\n');
    const transfers = (await readJson()).filter((e) => e.event === 'transfer');
    expect(lines).toHaveLength(transfers.length);
    for (const l of lines) {
      const f = l.split(' ');
      expect(f).toHaveLength(18); // current-time is five words: DDD MMM dd hh:mm:ss YYYY
      expect(f.slice(0, 5).join(' ')).toMatch(/^[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \d{4}$/);
      expect(f[5]).toMatch(/^\d+$/);
      expect(f[6]).toBe('127.0.0.1');
      expect(f[7]).toMatch(/^\d+$/);
      expect(f[8]).toMatch(/^\//);
      expect(f.slice(9, 11)).toEqual(['b', '_']);
      expect(['i', 'o']).toContain(f[11]);
      expect(f[12]).toBe('r');
      expect(f[13]).toBe(s.username);
      expect(f.slice(14, 17)).toEqual(['sftp', '0', '*']);
      expect(['c', 'i']).toContain(f[17]);
    }
    const last = lines.at(-1)!.split(' ');
    expect(last.slice(7, 9)).toEqual(['5', '/with_space.txt']);
    expect(last[11]).toBe('i');
    expect(lines.find((l) => l.includes('/big.bin'))!.endsWith(' i')).toBe(true);
  });

  it('a file name with a newline cannot forge a log line in any sink', async () => {
    const evil = '/x\nFailed password for root from 6.6.6.6 port 22 ssh2\r\u001b[31m';
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.on('ready', () => {
        client.sftp((err, sftp) => {
          if (err) return reject(err);
          sftp.writeFile(evil, 'data', (e) => (e ? reject(e) : resolve()));
        });
      });
      client.on('error', reject);
      client.connect({ ...s.connectOptions });
    });
    client.end();
    await s.events.waitFor((e) => e.event === 'transfer' && e.path === evil);
    await settle();
    const x = await readFile(join(logs, 'xferlog'), 'utf8');
    expect(x).not.toMatch(/^Failed/m);
    expect(x).toContain('/x\\x0aFailed_password_for_root_from_6.6.6.6_port_22_ssh2\\x0d\\x1b[31m');
    for (const l of x.trim().split('\n')) expect(l.split(' ')).toHaveLength(18);
    const json = await readFile(join(logs, 'audit.json'), 'utf8');
    expect(json.split('\n').filter((l) => l && !l.startsWith('{'))).toEqual([]);
    expect((await readJson()).find((e) => e.event === 'transfer' && e.path === evil)).toBeDefined();
    const auth = await readFile(join(logs, 'auth.log'), 'utf8');
    expect(auth).not.toContain('6.6.6.6');
  });

  it('writes OpenSSH-style auth lines that the shipped fail2ban filter counts exactly', async () => {
    const authLog = join(logs, 'auth.log');
    const before = (await readFile(authLog, 'utf8')).split('\n').length;
    const N = 4;
    for (let i = 0; i < N; i++) {
      const r = await sftpPassword(s, `wrong-${i}`, ['pwd']);
      expect(r.code).not.toBe(0);
    }
    await sftpPassword(s, 'whatever', ['pwd'], 'nobody x from 6.6.6.6 port 1');
    await settle();
    const lines = (await readFile(authLog, 'utf8')).split('\n').slice(before - 1).join('\n');
    const failedLog = join(logs, 'failed.log');
    await writeFile(failedLog, lines);
    const filter = new URL('../../contrib/fail2ban/filter.d/sftp-chroot.conf', import.meta.url).pathname;
    const f = await run('fail2ban-regex', ['-o', '<ip>', failedLog, filter]);
    const ips = f.stdout.trim().split('\n').filter(Boolean);
    // OpenSSH's client offers a password once per prompt: count the server's own failure records.
    const failures = s.events.all.filter((e) => e.event === 'auth.failure' && !e.probe && e.reason !== 'too-many-attempts' && e.method !== 'none');
    expect(ips.length).toBe(failures.length);
    expect(ips.length).toBeGreaterThanOrEqual(N + 1);
    expect(new Set(ips)).toEqual(new Set(['127.0.0.1']));
    expect(lines).toContain('Invalid user nobody\\x20x\\x20from\\x206.6.6.6\\x20port\\x201 from 127.0.0.1');
  });

  it('the fail2ban filter matches nothing in a log of successful sessions', async () => {
    const okLog = (await readFile(join(logs, 'auth.log'), 'utf8'))
      .split('\n')
      .filter((l) => l.includes('Accepted'))
      .join('\n');
    expect(okLog).toMatch(/Accepted publickey for \S+ from 127\.0\.0\.1 port \d+ ssh2: ED25519 SHA256:/);
    const file = join(logs, 'ok.log');
    await writeFile(file, okLog + '\n');
    const filter = new URL('../../contrib/fail2ban/filter.d/sftp-chroot.conf', import.meta.url).pathname;
    const f = await run('fail2ban-regex', ['-o', '<ip>', file, filter]);
    expect(f.stdout.trim()).toBe('');
  });

  it('never logs passwords or file contents', async () => {
    await settle();
    const all = (await readFile(join(logs, 'audit.json'), 'utf8')) + (await readFile(join(logs, 'auth.log'), 'utf8'));
    expect(all).not.toContain(s.password);
    expect(all).not.toContain('wrong-0');
    expect(all).not.toContain('BEGIN OPENSSH');
  });
});

describe('session totals', () => {
  it('a session closed by the client with a handle still open is counted once', async () => {
    const t = await startTestServer({ files: { 'r.csv': 'a,b\n' } });
    try {
      const c = await new Promise<InstanceType<typeof ssh2.Client>>((resolve, reject) => {
        const cl = new ssh2.Client();
        cl.on('ready', () => resolve(cl)).on('error', reject);
        cl.connect({ ...t.connectOptions });
      });
      await new Promise<void>((resolve, reject) =>
        c.sftp((err, f) => {
          if (err) return reject(err);
          f.writeFile('/up.bin', Buffer.from('hello world\n'), (e1) => {
            if (e1) return reject(e1);
            f.readFile('/r.csv', (e2) => {
              if (e2) return reject(e2);
              f.open('/open.bin', 'w', (e3, h) => {
                if (e3) return reject(e3);
                f.write(h, Buffer.alloc(4096), 0, 4096, 0, (e4) => (e4 ? reject(e4) : resolve()));
              });
            });
          });
        }),
      );
      c.end();
      const close = (await t.events.waitFor('session.close')) as Extract<AuditRecord, { event: 'session.close' }>;
      expect(close.totals).toEqual({ filesUp: 2, filesDown: 1, bytesIn: 12 + 4096, bytesOut: 4, requests: expect.any(Number), errors: 0 });
      expect(t.events.ofType('transfer').map((e) => `${e.path}:${e.status}`).sort()).toEqual(['/open.bin:incomplete', '/r.csv:complete', '/up.bin:complete']);
      expect(t.events.ofType('session.close')).toHaveLength(1);
    } finally {
      await t.close();
    }
  });
});
