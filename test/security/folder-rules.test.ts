/**
 * Per-folder rules against every bypass we could think of: symlinks (made by the client or by the
 * admin, absolute, relative, dangling, to folders and to files), hard links, renames in and out,
 * posix-rename over a file, setstat, copy-data, lexical "..", atomic uploads, and a symlink swapped
 * in under a path while requests on it are in flight. Each case names the request and expects
 * PERMISSION_DENIED (or a failure), and afterwards the guarded files are byte-for-byte as they were.
 *
 * The user's rules:  /inbox   list upload mkdir rename delete symlink   (a drop box: no download, no overwrite)
 *                    /outbox  list download                             (read-only)
 *                    /private (nothing)
 *                    elsewhere ("/free"): everything
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { connect, OPEN, STATUS, SftpError, type SftpClient } from '../helpers/sftp-client.js';
import { FolderRules } from '../../src/folders/rules.js';

const REPORT = 'REPORT for the partner\n';
const SECRET = 'PRIVATE never to be read\n';
const MINE = 'uploaded by the partner\n';

let s: TestServer;
let c: SftpClient;
let host: (p: string) => string;

beforeAll(async () => {
  s = await startTestServer({
    folders: {
      '/inbox': ['list', 'upload', 'mkdir', 'rename', 'delete', 'symlink'],
      '/outbox': ['list', 'download'],
      '/private': [],
    },
    files: { 'outbox/report.csv': REPORT, 'outbox/sub/': null, 'private/secret.txt': SECRET, 'inbox/mine.txt': MINE, 'free/': null },
  });
  host = (p) => join(s.root, p);
  c = await connect(s);
});
afterAll(async () => {
  await c?.end();
  await s?.close();
});

/** What the rules guard, as bytes and names on the host. */
function guarded(): string {
  const list = (d: string) => readdirSync(host(d)).sort().join(',');
  return JSON.stringify([readFileSync(host('outbox/report.csv'), 'utf8'), readFileSync(host('private/secret.txt'), 'utf8'), readFileSync(host('inbox/mine.txt'), 'utf8'), list('outbox'), list('private'), list('outbox/sub')]);
}
const BEFORE = JSON.stringify([REPORT, SECRET, MINE, 'report.csv,sub', 'secret.txt', '']);

beforeEach(() => {
  // Each case starts from a clean /free and /inbox (only mine.txt) and the guarded files intact.
  rmSync(host('free'), { recursive: true, force: true });
  mkdirSync(host('free'));
  for (const n of readdirSync(host('inbox'))) if (n !== 'mine.txt') rmSync(host(`inbox/${n}`), { recursive: true, force: true });
  expect(guarded()).toBe(BEFORE);
});

async function refused(p: Promise<unknown>): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'the request should have been refused').toBeInstanceOf(SftpError);
  expect((e as SftpError).code).toBe(STATUS.PERMISSION_DENIED);
}

const put = async (path: string, data: string) => c.writeFile(path, data);
const get = async (path: string) => String(await c.readFile(path));

describe('per-folder rules: what each folder allows', () => {
  it('the drop box takes new uploads and folders, lists, and refuses downloads and overwrites', async () => {
    await put('/inbox/new.csv', 'x');
    await c.mkdir('/inbox/d');
    expect((await c.list('/inbox')).map((e) => e.filename).sort()).toEqual(['.', '..', 'd', 'mine.txt', 'new.csv']);
    await refused(get('/inbox/mine.txt'));
    await refused(put('/inbox/mine.txt', 'replaced'));
    await refused(c.open('/inbox/mine.txt', OPEN.WRITE | OPEN.APPEND));
    expect(guarded()).toBe(BEFORE);
  });

  it('the read-only folder lists and downloads, and refuses every change', async () => {
    expect(await get('/outbox/report.csv')).toBe(REPORT);
    await refused(put('/outbox/report.csv', 'x'));
    await refused(put('/outbox/new.csv', 'x'));
    await refused(c.remove('/outbox/report.csv'));
    await refused(c.mkdir('/outbox/d'));
    await refused(c.rmdir('/outbox/sub'));
    await refused(c.setstat('/outbox/report.csv', { size: 0 }));
    await refused(c.setstat('/outbox/report.csv', { mode: 0o600 }));
    await refused(c.symlink('/private/secret.txt', '/outbox/l'));
    await refused(c.rename('/outbox/report.csv', '/outbox/renamed.csv'));
    expect(guarded()).toBe(BEFORE);
  });

  it('a folder with no permissions can be neither listed nor read, and a name can still be stat-ed', async () => {
    await refused(c.list('/private'));
    await refused(get('/private/secret.txt'));
    expect((await c.stat('/private/secret.txt')).size).toBe(SECRET.length);
  });

  it('outside every rule, everything is allowed', async () => {
    await put('/free/a', 'a');
    await c.rename('/free/a', '/free/b');
    expect(await get('/free/b')).toBe('a');
    await c.remove('/free/b');
  });
});

describe('per-folder rules hold after symlinks are resolved', () => {
  const viaLinks: [string, string][] = [
    ['an absolute symlink to the file', '/private/secret.txt'],
    ['a relative symlink to the file', '../private/secret.txt'],
    ['a symlink with ".." past the root', '../../../../private/secret.txt'],
  ];
  for (const [name, target] of viaLinks) {
    it(`download through ${name}, made by the client in /free, is refused`, async () => {
      await c.symlink(target, '/free/l');
      await refused(get('/free/l'));
    });
  }

  it('a symlink to a folder cannot be used to write into /outbox or read /inbox', async () => {
    await c.symlink('/outbox', '/free/o');
    await c.symlink('../inbox', '/free/i');
    await refused(put('/free/o/report.csv', 'overwritten'));
    await refused(put('/free/o/new.csv', 'new'));
    await refused(c.remove('/free/o/report.csv'));
    await refused(c.setstat('/free/o/report.csv', { size: 1 }));
    await refused(c.mkdir('/free/o/d'));
    await refused(get('/free/i/mine.txt'));
    await refused(c.rename('/free/o/report.csv', '/free/r.csv'));
    await refused(c.hardlink('/free/o/report.csv', '/free/h.csv'));
    expect(guarded()).toBe(BEFORE);
  });

  it('a symlink made in /inbox to /private gives nothing /private does not', async () => {
    await c.symlink('/private', '/inbox/p');
    await refused(c.list('/inbox/p'));
    await refused(get('/inbox/p/secret.txt'));
  });

  it('a dangling symlink is followed to its target, where the target\'s rule decides the create', async () => {
    await c.symlink('/outbox/planted.csv', '/free/dl');
    await refused(put('/free/dl', 'planted'));
    await refused(c.open('/free/dl', OPEN.WRITE | OPEN.CREAT));
    expect(guarded()).toBe(BEFORE);
  });

  it('symlinks an administrator put in the root are resolved the same way', async () => {
    symlinkSync('/outbox', host('free/admin-link'));
    symlinkSync('../private/secret.txt', host('free/admin-file'));
    await refused(put('/free/admin-link/report.csv', 'x'));
    await refused(get('/free/admin-file'));
    expect(await get('/free/admin-link/report.csv')).toBe(REPORT);
  });

  it('".." in a client path is the same path: /inbox/../outbox is /outbox', async () => {
    await refused(put('/inbox/../outbox/report.csv', 'x'));
    await refused(get('/outbox/../inbox/mine.txt'));
  });
});

describe('per-folder rules hold on both sides of rename, hard link and copy', () => {
  it('a file cannot be renamed out of /outbox or /private, nor into /outbox', async () => {
    await refused(c.rename('/outbox/report.csv', '/free/r.csv'));
    await refused(c.rename('/private/secret.txt', '/free/s.txt'));
    await refused(c.rename('/inbox/mine.txt', '/outbox/mine.txt'));
    await refused(c.posixRename('/inbox/mine.txt', '/outbox/report.csv'));
    expect(guarded()).toBe(BEFORE);
  });

  it('a rename may not carry content to where it could be downloaded or overwritten', async () => {
    // /inbox allows rename, but /free would allow "download" of what /inbox hides.
    await refused(c.rename('/inbox/mine.txt', '/free/mine.txt'));
    expect(guarded()).toBe(BEFORE);
  });

  it('a rename within /inbox, or from /free into /inbox, is allowed', async () => {
    await put('/inbox/a.part', 'a');
    await c.rename('/inbox/a.part', '/inbox/a.csv');
    await put('/free/b', 'b');
    await c.rename('/free/b', '/inbox/b');
    await refused(get('/inbox/b'));
  });

  it('a ruled folder itself cannot be renamed, nor a folder renamed over or into its place', async () => {
    await refused(c.rename('/outbox', '/free/outbox'));
    await refused(c.rename('/private', '/free/p'));
    await c.mkdir('/free/d');
    await refused(c.rename('/free/d', '/outbox'));
    await refused(c.posixRename('/free/d', '/private'));
    expect(guarded()).toBe(BEFORE);
  });

  it('a hard link may not give a name with more rights to a guarded file', async () => {
    await refused(c.hardlink('/outbox/report.csv', '/free/h.csv'));
    await refused(c.hardlink('/private/secret.txt', '/free/s.txt'));
    await refused(c.hardlink('/inbox/mine.txt', '/free/m.txt'));
    await refused(c.hardlink('/free/x', '/outbox/x'));
    expect(readdirSync(host('free'))).toEqual([]);
  });

  it('a hard link joins only folders whose rules grant the same: not /outbox into /inbox, nor /free into the drop box', async () => {
    await refused(c.hardlink('/outbox/report.csv', '/inbox/h.csv'));
    // Through the /free name the client could go on changing what it "uploaded" into /inbox.
    await put('/free/mine2.csv', 'v1');
    await refused(c.hardlink('/free/mine2.csv', '/inbox/mine2.csv'));
    expect(readdirSync(host('inbox'))).toEqual(['mine.txt']);
    // Within one folder (or between folders with equal rules) a link is an ordinary one.
    await c.hardlink('/free/mine2.csv', '/free/again.csv');
    expect(lstatSync(host('free/again.csv')).nlink).toBe(2);
    expect(guarded()).toBe(BEFORE);
  });

  it('copy-data needs a read handle on the source, which /inbox and /private never give', async () => {
    await refused(c.open('/inbox/mine.txt', OPEN.READ));
    await refused(c.open('/private/secret.txt', OPEN.READ));
    await refused(c.open('/outbox/report.csv', OPEN.READ | OPEN.WRITE));
  });
});

describe('per-folder rules on attributes', () => {
  it('a handle opened only for reading cannot change the mode or times of a file in /outbox', async () => {
    const h = await c.open('/outbox/report.csv', OPEN.READ);
    try {
      await refused(c.fsetstat(h, { mode: 0o600 }));
      await refused(c.fsetstat(h, { atime: 1_000_000, mtime: 1_000_000 }));
    } finally {
      await c.close(h);
    }
    expect(lstatSync(host('outbox/report.csv')).mode & 0o777).toBe(0o644);
    expect(lstatSync(host('outbox/report.csv')).mtimeMs).toBeGreaterThan(1_000_000_000);
  });

  it('after an upload into the drop box its times may be set (rclone, WinSCP, put -p), not its mode', async () => {
    await put('/inbox/t.csv', 't');
    await c.setstat('/inbox/t.csv', { atime: 1_000_000, mtime: 1_000_000 });
    expect(lstatSync(host('inbox/t.csv')).mtimeMs).toBe(1_000_000_000);
    await refused(c.setstat('/inbox/t.csv', { mode: 0o600 }));
    const h = await c.open('/inbox/h.csv', OPEN.WRITE | OPEN.CREAT);
    try {
      await c.fsetstat(h, { atime: 2_000_000, mtime: 2_000_000 });
      await refused(c.fsetstat(h, { mode: 0o600 }));
    } finally {
      await c.close(h);
    }
  });
});

describe('per-folder rules and atomic uploads', () => {
  it('an atomic upload over a file in /outbox is refused at OPEN and leaves no hidden file', async () => {
    await refused(put('/outbox/report.csv', 'replaced'));
    expect(readdirSync(host('outbox')).sort()).toEqual(['report.csv', 'sub']);
  });

  it('an atomic upload into /inbox is published under its name', async () => {
    await put('/inbox/atomic.csv', 'whole');
    expect(readFileSync(host('inbox/atomic.csv'), 'utf8')).toBe('whole');
    expect(readdirSync(host('inbox')).sort()).toEqual(['atomic.csv', 'mine.txt']);
  });
});

describe('per-folder rules under a symlink swapped in while requests run', () => {
  it('writes to /free/sw/report.csv never land in /outbox while /free/sw flips between a folder and a symlink to /outbox', async () => {
    const sw = host('free/sw');
    let flips = 0;
    let stop = false;
    // The admin (or another tenant) flips the name on the host, as fast as it can, in another job.
    const flipper = (async () => {
      while (!stop) {
        try {
          // A write may land in the folder while it is being removed: then try again.
          rmSync(sw, { recursive: true, force: true });
        } catch {
          continue;
        }
        if (flips++ % 2) mkdirSync(sw);
        else symlinkSync('/outbox', sw);
        await new Promise((r) => setImmediate(r));
      }
    })();
    let landed = 0;
    let refusedOrFailed = 0;
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      const batch = Array.from({ length: 16 }, (_, i) =>
        c.writeFile('/free/sw/report.csv', `swapped ${i}`).then(
          () => landed++,
          () => refusedOrFailed++,
        ),
      );
      await Promise.all(batch);
    }
    stop = true;
    await flipper;
    expect(guarded()).toBe(BEFORE);
    // The race ran both ways: some writes landed in the real folder, others were refused or failed.
    expect(flips).toBeGreaterThan(10);
    expect(refusedOrFailed).toBeGreaterThan(0);
  }, 20_000);

  it('the renamed-away case: a folder renamed out and a symlink put in its place between requests', async () => {
    mkdirSync(host('free/dir'));
    for (let i = 0; i < 200; i++) {
      const w = c.writeFile('/free/dir/report.csv', `try ${i}`).catch(() => undefined);
      if (i % 2 === 0) {
        renameSync(host('free/dir'), host(`free/old${i}`));
        symlinkSync('/outbox', host('free/dir'));
      } else {
        rmSync(host('free/dir'));
        mkdirSync(host('free/dir'));
      }
      await w;
    }
    expect(guarded()).toBe(BEFORE);
  });
});

describe('per-folder rules and reload', () => {
  it('a reload that gives a connected user rules applies to the running session at once, and one that lifts them too', async () => {
    const t = await startTestServer({ files: { 'outbox/r.csv': 'r' } });
    const tc = await connect(t);
    try {
      await tc.writeFile('/outbox/r.csv', 'changed while free');
      const withRules = (folders: Record<string, ('list' | 'download')[]> | undefined) =>
        t.server.reload({ ...t.server.config, users: t.server.config.users.map(({ folders: _old, ...u }) => ({ ...u, ...validatedFolders(folders) })) });
      await withRules({ '/outbox': ['list', 'download'] });
      await refused(tc.writeFile('/outbox/r.csv', 'after the reload'));
      expect(String(await tc.readFile('/outbox/r.csv'))).toBe('changed while free');
      await withRules(undefined);
      await tc.writeFile('/outbox/r.csv', 'rules lifted');
    } finally {
      await tc.end();
      await t.close();
    }
  });
});

/** FolderRules as the config loader makes them (the reload takes a validated config). */
function validatedFolders(folders: Record<string, ('list' | 'download')[]> | undefined): { folders?: FolderRules } {
  return folders ? { folders: new FolderRules(folders) } : {};
}
