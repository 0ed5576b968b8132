import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, writeFile, readFile, rm } from 'node:fs/promises';
import { lstatSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { sftpBatch, sftpPassword } from '../helpers/openssh.js';

let s: TestServer;
let local: string;

beforeAll(async () => {
  s = await startTestServer({ files: { 'hello.txt': 'hello world\n', 'docs/': null } });
  local = await mkdtemp(join(tmpdir(), 'sftp-local-'));
});
afterAll(async () => {
  await s.close();
  await rm(local, { recursive: true, force: true });
});

describe('OpenSSH sftp client', () => {
  it('lands at / and cd .. at / stays at /', async () => {
    const r = await sftpBatch(s, ['pwd', 'cd ..', 'pwd', 'cd ../../..', 'pwd', 'cd /docs/../..', 'pwd']);
    expect(r.code).toBe(0);
    const dirs = r.stdout.split('\n').filter((l) => l.startsWith('Remote working directory:'));
    expect(dirs).toEqual(Array(4).fill('Remote working directory: /'));
  });

  it('puts and gets files byte for byte', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(join(local, 'up.bin'), data);
    const r = await sftpBatch(s, ['put up.bin /docs/up.bin', 'get /docs/up.bin down.bin', 'get hello.txt'], { cwd: local });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await s.readFile('/docs/up.bin')).equals(data)).toBe(true);
    expect((await readFile(join(local, 'down.bin'))).equals(data)).toBe(true);
    expect(await readFile(join(local, 'hello.txt'), 'utf8')).toBe('hello world\n');
  });

  it('ls -l shows modes, the user name from users-groups-by-id, sizes and names', async () => {
    const r = await sftpBatch(s, ['ls -l /']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^-rw-r--r--\\s+\\S+\\s+${s.username}\\s+${s.username}\\s+12 \\w{3} [ \\d]\\d [\\d:]{4,5} /hello\\.txt$`, 'm'));
    expect(r.stdout).toMatch(/^d[rwx-]{9}\s+.* \/docs$/m);
  });

  it('mkdir, rename, symlink, ln, chmod, rm and rmdir change the root as asked', async () => {
    await s.writeFile('/work/a.txt', 'A');
    const r = await sftpBatch(s, [
      'mkdir /made',
      'rename /work/a.txt /made/b.txt',
      'symlink /made/b.txt /made/link',
      'ln /made/b.txt /made/hard',
      'chmod 4640 /made/b.txt',
      'rm /work/../made/hard',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await s.readFile('/made/b.txt', undefined).then(String)).toBe('A');
    expect(readlinkSync(join(s.root, 'made/link'))).toBe('/made/b.txt');
    expect(statSync(join(s.root, 'made/b.txt')).mode & 0o7777).toBe(0o640);
    expect(await s.exists('/made/hard')).toBe(false);
    const r2 = await sftpBatch(s, ['rm /made/link', 'rm /made/b.txt', 'rmdir /made']);
    expect(r2.code).toBe(0);
    expect(await s.exists('/made')).toBe(false);
  });

  it('a 40 MiB get with 64 requests of 255 KiB in flight completes under the default in-flight cap', async () => {
    // The cap (512 KiB) is far below 64 × 255 KiB: READs must queue for budget in request order, or
    // later READs holding budget wait on earlier ones parked for it (a stall seen in the benchmark).
    const data = randomBytes(40 * 1024 * 1024);
    await s.writeFile('/big-get.bin', data);
    const r = await sftpBatch(s, ['get /big-get.bin big-get.bin'], { cwd: local, timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect((await readFile(join(local, 'big-get.bin'))).equals(data)).toBe(true);
  });

  it('hard links keep the same inode', async () => {
    await s.writeFile('/h1', 'x');
    const r = await sftpBatch(s, ['ln /h1 /h2']);
    expect(r.code).toBe(0);
    expect(lstatSync(join(s.root, 'h2')).ino).toBe(lstatSync(join(s.root, 'h1')).ino);
  });

  it('df works through statvfs@openssh.com', async () => {
    const r = await sftpBatch(s, ['df -h /']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Size\s+Used\s+Avail/);
  });

  it('advertises every OpenSSH extension and switches to 255 KiB requests', async () => {
    const r = await sftpBatch(s, ['pwd'], { extra: ['-vvv'] });
    expect(r.code).toBe(0);
    for (const ext of [
      'posix-rename@openssh.com', 'statvfs@openssh.com', 'fstatvfs@openssh.com', 'hardlink@openssh.com', 'fsync@openssh.com',
      'lsetstat@openssh.com', 'limits@openssh.com', 'expand-path@openssh.com', 'copy-data', 'users-groups-by-id@openssh.com',
    ]) expect(r.stderr).toContain(`Server supports extension "${ext}"`);
    // OpenSSH 9.2 predates home-directory and says so; newer clients list it as supported.
    expect(r.stderr).toMatch(/(Server supports|Unrecognised server) extension "home-directory"/);
    expect(r.stderr).toContain('Sent message limits@openssh.com');
  });

  it('uses 255 KiB reads and writes once limits@openssh.com is advertised', async () => {
    await writeFile(join(local, 'big.bin'), randomBytes(2 * 261120));
    const r = await sftpBatch(s, ['put big.bin /big.bin', 'get /big.bin big2.bin'], { cwd: local });
    expect(r.code).toBe(0);
    const up = await s.events.waitFor((e) => e.event === 'transfer' && e.path === '/big.bin' && e.direction === 'upload');
    const down = await s.events.waitFor((e) => e.event === 'transfer' && e.path === '/big.bin' && e.direction === 'download');
    // 32 KiB requests would take 16 writes; 261120-byte requests take 2.
    expect(up).toMatchObject({ requests: 2, maxRequestBytes: 261120 });
    expect(down).toMatchObject({ maxRequestBytes: 261120 });
  });

  it('rename onto an existing directory fails and leaves both intact', async () => {
    await s.writeFile('/r1', 'one');
    await s.writeFile('/rdir/keep', 'two');
    const r = await sftpBatch(s, ['-rename /r1 /rdir']);
    expect(r.stderr).toMatch(/Failure/);
    expect(String(await s.readFile('/r1'))).toBe('one');
    expect(String(await s.readFile('/rdir/keep'))).toBe('two');
  });

  it('rename uses posix-rename and replaces an existing file', async () => {
    await s.writeFile('/p1', 'one');
    await s.writeFile('/p2', 'two');
    const r = await sftpBatch(s, ['rename /p1 /p2']);
    expect(r.code).toBe(0);
    expect(String(await s.readFile('/p2'))).toBe('one');
    expect(await s.exists('/p1')).toBe(false);
    await s.events.waitFor((e) => e.event === 'rename' && e.from === '/p1' && e.overwrite === true && e.ok);
  });

  it('logs in with a password through sshpass', async () => {
    const r = await sftpPassword(s, s.password, ['pwd']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Remote working directory: /');
  });

  it('rejects a wrong password', async () => {
    const r = await sftpPassword(s, 'wrong-' + s.password, ['pwd']);
    expect(r.code).not.toBe(0);
    await s.events.waitFor((e) => e.event === 'auth.failure' && e.reason === 'bad-password');
  });

  it('writes one transfer record per closed file', async () => {
    await writeFile(join(local, 't.bin'), randomBytes(100_000));
    const r = await sftpBatch(s, ['put t.bin /t.bin'], { cwd: local });
    expect(r.code).toBe(0);
    const t = await s.events.waitFor((e) => e.event === 'transfer' && e.path === '/t.bin');
    expect(t).toMatchObject({ event: 'transfer', user: s.username, direction: 'upload', bytesWritten: 100_000, status: 'complete' });
    expect(t.remote).toMatch(/^127\.0\.0\.1:\d+$/);
  });
});
