import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dir } from 'tmp-promise';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as jail from '../../../src/jail/native.js';
import { Jail } from '../../../src/jail/jail.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = fs.constants;
const SECRET = 'SECRET-OUTSIDE';
const OLD_TIME = 1_000_000_000;

/**
 * Layout of every test:
 *   <tmp>/root      the jail (rootFd)
 *   <tmp>/outside   sentinel directory that nothing may touch or read
 *   <tmp>/root2     a sibling whose name starts with the root's name
 */
interface Fixture {
  tmp: string;
  root: string;
  outside: string;
  rootFd: number;
  cleanup: () => Promise<void>;
}

let fx: Fixture;

beforeEach(async () => {
  const t = await dir({ unsafeCleanup: true });
  const tmp = fs.realpathSync(t.path);
  const root = path.join(tmp, 'root');
  const outside = path.join(tmp, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  fs.mkdirSync(path.join(tmp, 'root2'));
  fs.writeFileSync(path.join(tmp, 'root2', 'f'), SECRET);
  fs.writeFileSync(path.join(outside, 'secret'), SECRET, { mode: 0o640 });
  fs.chmodSync(path.join(outside, 'secret'), 0o640);
  fs.mkdirSync(path.join(outside, 'dir'));
  fs.utimesSync(path.join(outside, 'secret'), OLD_TIME, OLD_TIME);
  fs.utimesSync(path.join(outside, 'dir'), OLD_TIME, OLD_TIME);
  fx = { tmp, root, outside, rootFd: jail.openRoot(root), cleanup: t.cleanup };
  outsideBefore = snapshot(outside);
});

let outsideBefore: Record<string, string>;

afterEach(async () => {
  jail.closeFd(fx.rootFd);
  // Whatever a test did inside the root, the sentinel outside is untouched.
  expect(snapshot(fx.outside)).toEqual(outsideBefore);
  expect(fs.readFileSync(path.join(fx.tmp, 'root2', 'f'), 'utf8')).toBe(SECRET);
  await fx.cleanup();
});

/** Everything about a tree except atimes: names, types, modes, sizes, mtimes, contents, link targets. */
function snapshot(top: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const abs = path.join(top, rel);
    const st = fs.lstatSync(abs);
    let what = `${st.mode.toString(8)}:${st.size}:${st.mtimeMs}`;
    if (st.isSymbolicLink()) what += `->${fs.readlinkSync(abs)}`;
    else if (st.isFile()) what += `=${fs.readFileSync(abs, 'utf8')}`;
    out[rel || '.'] = what;
    if (st.isDirectory()) for (const name of fs.readdirSync(abs).sort()) walk(path.join(rel, name));
  };
  walk('');
  return out;
}

const inRoot = (...parts: string[]): string => path.join(fx.root, ...parts);

/** The rejection code of a promise, or 'OK'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return jail.isJailError(e) ? e.code : `not a JailError: ${String(e)}`;
  }
}

async function readVirtual(vpath: string): Promise<string> {
  const { fd } = await jail.open(fx.rootFd, vpath, O_RDONLY, 0);
  try {
    return fs.readFileSync(fd, 'utf8');
  } finally {
    jail.closeFd(fd);
  }
}

async function writeVirtual(vpath: string, data: string, flags = O_WRONLY | O_CREAT | O_TRUNC): Promise<void> {
  const { fd } = await jail.open(fx.rootFd, vpath, flags, 0o644);
  try {
    fs.writeSync(fd, data);
  } finally {
    jail.closeFd(fd);
  }
}

function mkfifo(p: string): void {
  execFileSync('mkfifo', [p]);
}

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describe('probe and roots', () => {
  it('probe reports that openat2 RESOLVE_IN_ROOT works here', () => {
    expect(jail.loadError()).toBeUndefined();
    expect(jail.probe()).toBe(true);
  });

  it('openRoot refuses a regular file with ENOTDIR and a missing path with ENOENT', () => {
    const codeOf = (p: string): string => {
      try {
        jail.closeFd(jail.openRoot(p));
        return 'OK';
      } catch (e) {
        return jail.isJailError(e) ? e.code : 'other';
      }
    };
    expect(codeOf(path.join(fx.outside, 'secret'))).toBe('ENOTDIR');
    expect(codeOf(path.join(fx.tmp, 'nope'))).toBe('ENOENT');
  });
});

describe('strict roots (per-folder rules act through them)', () => {
  it('a strict root refuses a symlink anywhere in a walk, and a plain root on the same folder still follows it', async () => {
    fs.mkdirSync(path.join(fx.root, 'real'));
    fs.writeFileSync(path.join(fx.root, 'real', 'f'), 'inside');
    fs.symlinkSync('/real', path.join(fx.root, 'link'));
    fs.symlinkSync('real/f', path.join(fx.root, 'flink'));
    const strict = jail.openRoot(fx.root, true);
    try {
      await expect(jail.open(strict, '/link/f', O_RDONLY, 0)).rejects.toMatchObject({ code: 'ELOOP' });
      await expect(jail.open(strict, '/flink', O_RDONLY, 0)).rejects.toMatchObject({ code: 'ELOOP' });
      await expect(jail.mkdir(strict, '/link/d', 0o755)).rejects.toMatchObject({ code: 'ELOOP' });
      await expect(jail.open(strict, '/link/new', O_WRONLY | O_CREAT, 0o644)).rejects.toMatchObject({ code: 'ELOOP' });
      // The link itself, not followed, is still there to lstat, readlink and remove.
      expect((await jail.stat(strict, '/link', false)).mode & 0o170000).toBe(0o120000);
      const r = await jail.open(strict, '/real/f', O_RDONLY, 0);
      jail.closeFd(r.fd);
      const plain = (await jail.open(fx.rootFd, '/link/f', O_RDONLY, 0)).fd;
      jail.closeFd(plain);
      await jail.unlink(strict, '/link');
      expect(fs.existsSync(path.join(fx.root, 'link'))).toBe(false);
      expect(fs.existsSync(path.join(fx.root, 'real', 'new'))).toBe(false);
    } finally {
      jail.closeFd(strict);
    }
  });

  it('an fd number reused after a strict root closes is a plain root again', async () => {
    fs.symlinkSync('.', path.join(fx.root, 'self'));
    const strict = jail.openRoot(fx.root, true);
    jail.closeFd(strict);
    const again = jail.openRoot(fx.root);
    try {
      expect(again).toBe(strict);
      expect((await jail.stat(again, '/self/self', true)).mode & 0o170000).toBe(0o040000);
    } finally {
      jail.closeFd(again);
    }
  });
});

describe('resolution inside the root', () => {
  it('absolute symlink resolves inside the root', async () => {
    fs.mkdirSync(inRoot('etc'));
    fs.writeFileSync(inRoot('etc', 'hostname'), 'inside');
    fs.symlinkSync('/etc', inRoot('abs'));
    fs.symlinkSync('/', inRoot('slash'));
    expect(await readVirtual('abs/hostname')).toBe('inside');
    expect(await readVirtual('/slash/slash/etc/hostname')).toBe('inside');
    expect(await jail.realpath(fx.rootFd, 'abs')).toBe('/etc');
    expect(await jail.realpath(fx.rootFd, 'slash')).toBe('/');
  });

  it('a symlink holding a host path is read as a path inside the root', async () => {
    fs.symlinkSync(path.join(fx.outside, 'secret'), inRoot('hostpath'));
    expect(await outcome(jail.open(fx.rootFd, 'hostpath', O_RDONLY, 0))).toBe('ENOENT');
    expect(await outcome(jail.stat(fx.rootFd, 'hostpath', true))).toBe('ENOENT');
  });

  it('relative symlink climbing past the root stops at the root', async () => {
    fs.mkdirSync(inRoot('etc'));
    fs.writeFileSync(inRoot('etc', 'hostname'), 'inside');
    fs.mkdirSync(inRoot('sub'));
    fs.symlinkSync('../../../../../../etc', inRoot('sub', 'rel'));
    fs.symlinkSync('../../outside/secret', inRoot('sub', 'esc'));
    expect(await readVirtual('sub/rel/hostname')).toBe('inside');
    expect(await outcome(jail.open(fx.rootFd, 'sub/esc', O_RDONLY, 0))).toBe('ENOENT');
  });

  it("'..' at the root stays at the root", async () => {
    const rootStat = await jail.stat(fx.rootFd, '/', true);
    for (const p of ['..', '/..', '/../..', 'a/../../..', '../', '//..//..', '.', '']) {
      fs.mkdirSync(inRoot('a'), { recursive: true });
      const st = await jail.stat(fx.rootFd, p, true);
      expect([st.dev, st.ino]).toEqual([rootStat.dev, rootStat.ino]);
      expect(await jail.realpath(fx.rootFd, p)).toBe('/');
    }
    expect(await outcome(jail.open(fx.rootFd, '../outside/secret', O_RDONLY, 0))).toBe('ENOENT');
    expect(await outcome(jail.open(fx.rootFd, '../../../../outside/secret', O_RDONLY, 0))).toBe('ENOENT');
  });

  it('a sibling whose name extends the root name is unreachable', async () => {
    expect(await outcome(jail.open(fx.rootFd, '../root2/f', O_RDONLY, 0))).toBe('ENOENT');
    fs.symlinkSync('../root2', inRoot('sib'));
    expect(await outcome(jail.stat(fx.rootFd, 'sib/f', true))).toBe('ENOENT');
  });

  it("'..' after a symlink is resolved physically", async () => {
    fs.mkdirSync(inRoot('a', 'b', 'c'), { recursive: true });
    fs.writeFileSync(inRoot('a', 'b', 'x'), 'physical');
    fs.symlinkSync('a/b/c', inRoot('d'));
    expect(await readVirtual('d/../x')).toBe('physical');
    expect(await jail.realpath(fx.rootFd, 'd/../x')).toBe('/a/b/x');
  });

  it('symlink loops fail with ELOOP', async () => {
    fs.symlinkSync('self', inRoot('self'));
    fs.symlinkSync('b', inRoot('a'));
    fs.symlinkSync('a', inRoot('b'));
    expect(await outcome(jail.stat(fx.rootFd, 'self', true))).toBe('ELOOP');
    expect(await outcome(jail.open(fx.rootFd, 'a', O_RDONLY, 0))).toBe('ELOOP');
    expect(await outcome(jail.open(fx.rootFd, 'a', O_WRONLY | O_CREAT, 0o644))).toBe('ELOOP');
  });

  it('magic links are refused', async () => {
    fs.symlinkSync('/proc/self/root', inRoot('magic'));
    // Inside the root there is no /proc, so the lookup cannot even reach a magic link.
    expect(await outcome(jail.stat(fx.rootFd, 'magic/etc', true))).toBe('ENOENT');
  });

  it('a path longer than PATH_MAX or containing NUL rejects without reaching the kernel', async () => {
    expect(await outcome(jail.stat(fx.rootFd, 'a/'.repeat(2100), true))).toBe('ENAMETOOLONG');
    expect(await outcome(jail.stat(fx.rootFd, 'x\0/../../outside', true))).toBe('EINVAL');
    expect(await outcome(jail.mkdir(fx.rootFd, 'new\0dir', 0o755))).toBe('EINVAL');
    expect(fs.existsSync(inRoot('new'))).toBe(false);
  });

  it('wrong argument types throw a TypeError synchronously', () => {
    const loose = jail as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => loose['stat']?.(fx.rootFd, 42, true)).toThrow(TypeError);
    expect(() => loose['stat']?.('x', '/', true)).toThrow(TypeError);
    expect(() => loose['readdir']?.({}, 10)).toThrow(TypeError);
    expect(() => loose['setstat']?.(fx.rootFd, '/', true, { mode: '777' })).toThrow(TypeError);
  });
});

describe('open', () => {
  it('reads, creates, truncates and appends regular files', async () => {
    await writeVirtual('f', 'hello');
    expect(fs.readFileSync(inRoot('f'), 'utf8')).toBe('hello');
    await writeVirtual('f', ' world', O_WRONLY | O_APPEND);
    expect(await readVirtual('f')).toBe('hello world');
    await writeVirtual('f', 'new', O_RDWR | O_TRUNC);
    expect(await readVirtual('/f')).toBe('new');
    const { fd, stat } = await jail.open(fx.rootFd, 'f', O_RDONLY, 0);
    jail.closeFd(fd);
    expect(stat.size).toBe(3);
    expect(stat.mode & fs.constants.S_IFMT).toBe(fs.constants.S_IFREG);
  });

  it('prefetch reads a small read-only file whole in the open job, and nothing else', async () => {
    await writeVirtual('small', 'tiny');
    fs.writeFileSync(inRoot('large'), Buffer.alloc(5000, 1));
    const small = await jail.open(fx.rootFd, 'small', O_RDONLY, 0, 4096);
    jail.closeFd(small.fd);
    expect(small.head?.toString()).toBe('tiny');
    const large = await jail.open(fx.rootFd, 'large', O_RDONLY, 0, 4096); // not smaller than the prefetch
    jail.closeFd(large.fd);
    expect(large.head).toBeUndefined();
    const rw = await jail.open(fx.rootFd, 'small', O_RDWR, 0, 4096); // not read-only
    jail.closeFd(rw.fd);
    expect(rw.head).toBeUndefined();
    const off = await jail.open(fx.rootFd, 'small', O_RDONLY, 0);
    jail.closeFd(off.fd);
    expect(off.head).toBeUndefined();
  });

  it('a Jail file forgets the prefetched content soon after opening (memory, not semantics)', async () => {
    await writeVirtual('small', 'tiny');
    const j = new Jail(fx.root);
    const f = await j.open('/small', { read: true, write: false, append: false, creat: false, trunc: false, excl: false }, 0);
    expect(f.head?.toString()).toBe('tiny');
    await new Promise((r) => setTimeout(r, 400));
    expect(f.head).toBeUndefined();
    await f.close();
    await j.close();
  });

  it('create applies the mode masked to 0777', async () => {
    const { fd, stat } = await jail.open(fx.rootFd, 'm', O_WRONLY | O_CREAT | O_EXCL, 0o4755);
    jail.closeFd(fd);
    expect(stat.mode & 0o7000).toBe(0);
    expect(fs.statSync(inRoot('m')).mode & 0o7000).toBe(0);
  });

  it('open refuses a FIFO without blocking', async () => {
    mkfifo(inRoot('fifo'));
    fs.symlinkSync('fifo', inRoot('to-fifo'));
    const started = Date.now();
    for (const flags of [O_RDONLY, O_WRONLY, O_RDWR, O_WRONLY | O_CREAT, O_WRONLY | O_TRUNC]) {
      expect(await outcome(jail.open(fx.rootFd, 'fifo', flags, 0o644))).toBe('ENOTREG');
      expect(await outcome(jail.open(fx.rootFd, 'to-fifo', flags, 0o644))).toBe('ENOTREG');
    }
    expect(Date.now() - started).toBeLessThan(2000);
    const err = await jail.open(fx.rootFd, 'fifo', O_RDONLY, 0).catch((e: unknown) => e);
    expect(jail.isJailError(err) && err.errno).toBe(22);
  }, 5000);

  it('open refuses a socket and a device with ENOTREG', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(inRoot('sock'), resolve));
    try {
      expect(await outcome(jail.open(fx.rootFd, 'sock', O_RDWR, 0))).toBe('ENOTREG');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    let haveDevice = true;
    try {
      execFileSync('mknod', [inRoot('null'), 'c', '1', '3'], { stdio: 'ignore' });
    } catch {
      haveDevice = false; // no CAP_MKNOD here
    }
    if (haveDevice) expect(await outcome(jail.open(fx.rootFd, 'null', O_WRONLY, 0))).toBe('ENOTREG');
  });

  it('open refuses a directory with EISDIR', async () => {
    fs.mkdirSync(inRoot('d'));
    expect(await outcome(jail.open(fx.rootFd, 'd', O_RDONLY, 0))).toBe('EISDIR');
    expect(await outcome(jail.open(fx.rootFd, '/', O_RDONLY, 0))).toBe('EISDIR');
    expect(await outcome(jail.open(fx.rootFd, 'd', O_WRONLY | O_CREAT, 0o644))).toBe('EISDIR');
  });

  it('create through a dangling symlink creates the target inside the root', async () => {
    fs.mkdirSync(inRoot('made'));
    fs.symlinkSync('/made/here.txt', inRoot('abs-dangling'));
    fs.symlinkSync('../../made/rel.txt', inRoot('made', 'rel-dangling'));
    fs.symlinkSync('abs-dangling2', inRoot('chain'));
    fs.symlinkSync('/made/chained.txt', inRoot('abs-dangling2'));
    await writeVirtual('abs-dangling', 'a');
    await writeVirtual('made/rel-dangling', 'b');
    await writeVirtual('chain', 'c');
    expect(fs.readFileSync(inRoot('made', 'here.txt'), 'utf8')).toBe('a');
    expect(fs.readFileSync(inRoot('made', 'rel.txt'), 'utf8')).toBe('b');
    expect(fs.readFileSync(inRoot('made', 'chained.txt'), 'utf8')).toBe('c');
    expect(fs.lstatSync(inRoot('abs-dangling')).isSymbolicLink()).toBe(true);
  });

  it('create through a dangling symlink aimed outside creates nothing outside', async () => {
    fs.symlinkSync(path.join(fx.outside, 'created'), inRoot('hostpath'));
    fs.symlinkSync('../outside/created', inRoot('rel'));
    fs.symlinkSync('../../../outside/dir/created', inRoot('deep'));
    for (const p of ['hostpath', 'rel', 'deep']) {
      expect(await outcome(jail.open(fx.rootFd, p, O_WRONLY | O_CREAT, 0o644))).toBe('ENOENT');
    }
    // With the directories present inside the root, the create lands there instead.
    fs.mkdirSync(inRoot('outside'));
    await writeVirtual('rel', 'in');
    expect(fs.readFileSync(inRoot('outside', 'created'), 'utf8')).toBe('in');
  });

  it('O_EXCL on an existing symlink fails with EEXIST', async () => {
    fs.writeFileSync(inRoot('target'), 'keep');
    fs.symlinkSync('target', inRoot('live'));
    fs.symlinkSync('/nowhere', inRoot('dangling'));
    for (const p of ['live', 'dangling', 'target']) {
      expect(await outcome(jail.open(fx.rootFd, p, O_WRONLY | O_CREAT | O_EXCL, 0o644))).toBe('EEXIST');
    }
    expect(fs.existsSync(inRoot('nowhere'))).toBe(false);
    expect(fs.readFileSync(inRoot('target'), 'utf8')).toBe('keep');
  });

  it('O_CREAT with a trailing slash is refused', async () => {
    expect(await outcome(jail.open(fx.rootFd, 'new/', O_WRONLY | O_CREAT, 0o644))).toBe('EISDIR');
    expect(fs.existsSync(inRoot('new'))).toBe(false);
  });
});

describe('stat, readlink and realpath', () => {
  it('lstat reports the link and stat the target', async () => {
    fs.writeFileSync(inRoot('t'), '12345');
    fs.symlinkSync('t', inRoot('l'));
    const st = await jail.stat(fx.rootFd, 'l', true);
    const lst = await jail.stat(fx.rootFd, 'l', false);
    expect(st.size).toBe(5);
    expect(lst.mode & fs.constants.S_IFMT).toBe(fs.constants.S_IFLNK);
    expect(lst.size).toBe(1);
    const host = fs.statSync(inRoot('t'));
    expect([st.ino, st.dev, st.nlink, st.uid, st.gid]).toEqual([host.ino, host.dev, host.nlink, host.uid, host.gid]);
    expect(st.mtime).toBe(Math.floor(host.mtimeMs / 1000));
  });

  it('lstat still resolves earlier components inside the root', async () => {
    fs.mkdirSync(inRoot('real'));
    fs.symlinkSync('x', inRoot('real', 'link'));
    fs.symlinkSync('/real', inRoot('dirlink'));
    const lst = await jail.stat(fx.rootFd, 'dirlink/link', false);
    expect(lst.mode & fs.constants.S_IFMT).toBe(fs.constants.S_IFLNK);
  });

  it('readlink returns the target verbatim', async () => {
    fs.symlinkSync('../../x/y', inRoot('rel'));
    fs.symlinkSync(path.join(fx.outside, 'secret'), inRoot('host'));
    expect(await jail.readlink(fx.rootFd, 'rel')).toBe('../../x/y');
    expect(await jail.readlink(fx.rootFd, '/host')).toBe(path.join(fx.outside, 'secret'));
    fs.writeFileSync(inRoot('file'), '');
    expect(await outcome(jail.readlink(fx.rootFd, 'file'))).toBe('EINVAL');
    expect(await outcome(jail.readlink(fx.rootFd, '/'))).toBe('EINVAL');
  });

  it('realpath never contains the host root', async () => {
    fs.mkdirSync(inRoot('a', 'b'), { recursive: true });
    fs.symlinkSync('/a/b', inRoot('abs'));
    fs.symlinkSync('../../../..', inRoot('a', 'up'));
    fs.symlinkSync(fx.outside, inRoot('host'));
    fs.symlinkSync('/a/newfile', inRoot('dangling'));
    const cases: Array<[string, string]> = [
      ['/', '/'],
      ['', '/'],
      ['.', '/'],
      ['/..', '/'],
      ['a/b/../..', '/'],
      ['abs', '/a/b'],
      ['abs/', '/a/b'],
      ['a/up', '/'],
      ['a/up/a/b', '/a/b'],
      ['a/missing', '/a/missing'],
      ['a/missing/', '/a/missing'],
      ['dangling', '/a/newfile'],
    ];
    for (const [input, want] of cases) {
      const got = await jail.realpath(fx.rootFd, input);
      expect(got, input).toBe(want);
      expect(got.includes(fx.tmp)).toBe(false);
    }
    // A host path stored in a link names a path inside the root, which does not exist here.
    expect(await outcome(jail.realpath(fx.rootFd, 'host/secret'))).toBe('ENOENT');
  });

  it('realpath allows only the last component to be missing', async () => {
    expect(await outcome(jail.realpath(fx.rootFd, 'x/y'))).toBe('ENOENT');
    expect(await outcome(jail.realpath(fx.rootFd, 'x/..'))).toBe('ENOENT');
    expect(await jail.realpath(fx.rootFd, 'x')).toBe('/x');
  });

  it('realpath is relative to the root fd it is given', async () => {
    fs.mkdirSync(inRoot('in'));
    const inner = jail.openRoot(inRoot('in'));
    try {
      expect(await jail.realpath(inner, '/')).toBe('/');
      expect(await jail.realpath(inner, '../..')).toBe('/');
      expect(await jail.realpath(fx.rootFd, 'in')).toBe('/in');
    } finally {
      jail.closeFd(inner);
    }
  });
});

describe('directories', () => {
  it("readdir of the root reports the root for '..'", async () => {
    fs.writeFileSync(inRoot('f'), 'x');
    const rootStat = await jail.stat(fx.rootFd, '/', true);
    const tmpStat = fs.statSync(fx.tmp);
    const d = await jail.opendir(fx.rootFd, '/');
    const all: jail.DirEntry[] = [];
    for (let batch = await jail.readdir(d, 100); batch.length > 0; batch = await jail.readdir(d, 100)) {
      all.push(...batch);
    }
    await jail.closedir(d);
    const dotdot = all.find((e) => e.name === '..');
    expect(dotdot?.stat?.ino).toBe(rootStat.ino);
    expect(dotdot?.stat?.ino).not.toBe(tmpStat.ino);
    expect(all.map((e) => e.name).sort()).toEqual(['.', '..', 'f']);
  });

  it("readdir through a symlink to '/' also reports the root for '..'", async () => {
    fs.symlinkSync('/', inRoot('top'));
    const rootStat = await jail.stat(fx.rootFd, '/', true);
    const d = await jail.opendir(fx.rootFd, 'top/..');
    const entries = await jail.readdir(d, 100);
    await jail.closedir(d);
    expect(entries.find((e) => e.name === '..')?.stat?.ino).toBe(rootStat.ino);
  });

  it("readdir of a subdirectory reports its real parent for '..'", async () => {
    fs.mkdirSync(inRoot('sub'));
    const rootStat = await jail.stat(fx.rootFd, '/', true);
    const d = await jail.opendir(fx.rootFd, '/sub');
    const entries = await jail.readdir(d, 100);
    await jail.closedir(d);
    expect(entries.find((e) => e.name === '..')?.stat?.ino).toBe(rootStat.ino);
  });

  it('readdir returns batches of at most max entries, then an empty array', async () => {
    for (let i = 0; i < 25; i++) fs.writeFileSync(inRoot(`f${i}`), '');
    fs.symlinkSync('/nowhere', inRoot('link'));
    const d = await jail.opendir(fx.rootFd, '');
    const sizes: number[] = [];
    const names = new Set<string>();
    for (;;) {
      const batch = await jail.readdir(d, 10);
      sizes.push(batch.length);
      if (batch.length === 0) break;
      for (const e of batch) names.add(e.name);
    }
    await jail.closedir(d);
    expect(sizes).toEqual([10, 10, 8, 0]);
    expect(names.size).toBe(28);
  });

  it('readdir stats entries without following symlinks', async () => {
    fs.symlinkSync(path.join(fx.outside, 'secret'), inRoot('host'));
    const d = await jail.opendir(fx.rootFd, '/');
    const entries = await jail.readdir(d, 100);
    await jail.closedir(d);
    const host = entries.find((e) => e.name === 'host');
    expect((host?.stat?.mode ?? 0) & fs.constants.S_IFMT).toBe(fs.constants.S_IFLNK);
  });

  it('opendir refuses files and FIFOs with ENOTDIR', async () => {
    fs.writeFileSync(inRoot('f'), '');
    mkfifo(inRoot('fifo'));
    expect(await outcome(jail.opendir(fx.rootFd, 'f'))).toBe('ENOTDIR');
    expect(await outcome(jail.opendir(fx.rootFd, 'fifo'))).toBe('ENOTDIR');
  });

  it('closedir twice is harmless and readdir after closedir rejects EBADF', async () => {
    const d = await jail.opendir(fx.rootFd, '/');
    await jail.closedir(d);
    await jail.closedir(d);
    expect(await outcome(jail.readdir(d, 10))).toBe('EBADF');
  });

  it('concurrent readdir and closedir on one Dir do not crash', async () => {
    for (let i = 0; i < 50; i++) fs.writeFileSync(inRoot(`f${i}`), '');
    const d = await jail.opendir(fx.rootFd, '/');
    const results = await Promise.allSettled([
      jail.readdir(d, 5),
      jail.readdir(d, 5),
      jail.closedir(d),
      jail.readdir(d, 5),
      jail.closedir(d),
    ]);
    for (const r of results) {
      if (r.status === 'rejected') expect(jail.isJailError(r.reason) && r.reason.code).toBe('EBADF');
    }
  });
});

describe('mutations', () => {
  it('mkdir, rmdir and unlink act on the named leaf', async () => {
    await jail.mkdir(fx.rootFd, '/d', 0o750);
    expect(fs.statSync(inRoot('d')).mode & 0o777 & ~0o750).toBe(0);
    await jail.mkdir(fx.rootFd, 'd/e/', 0o755);
    expect(await outcome(jail.mkdir(fx.rootFd, 'd/e', 0o755))).toBe('EEXIST');
    expect(await outcome(jail.rmdir(fx.rootFd, 'd'))).toBe('ENOTEMPTY');
    await jail.rmdir(fx.rootFd, 'd/e/');
    await writeVirtual('d/f', 'x');
    expect(await outcome(jail.rmdir(fx.rootFd, 'd/f'))).toBe('ENOTDIR');
    expect(await outcome(jail.unlink(fx.rootFd, 'd'))).toBe('EISDIR');
    await jail.unlink(fx.rootFd, 'd/f');
    await jail.rmdir(fx.rootFd, 'd');
    expect(fs.readdirSync(fx.root)).toEqual([]);
  });

  it("mutations refuse the root, '.' and '..'", async () => {
    fs.mkdirSync(inRoot('a'));
    for (const p of ['/', '', '///']) {
      expect(await outcome(jail.mkdir(fx.rootFd, p, 0o755))).toBe('EEXIST');
      expect(await outcome(jail.rmdir(fx.rootFd, p))).toBe('EBUSY');
      expect(await outcome(jail.unlink(fx.rootFd, p))).toBe('EBUSY');
      expect(await outcome(jail.rename(fx.rootFd, p, 'x', false))).toBe('EBUSY');
      expect(await outcome(jail.rename(fx.rootFd, 'a', p, false))).toBe('EBUSY');
      expect(await outcome(jail.link(fx.rootFd, p, 'x'))).toBe('EBUSY');
      expect(await outcome(jail.symlink(fx.rootFd, 'x', p))).toBe('EBUSY');
    }
    for (const p of ['.', '..', 'a/.', 'a/..', 'a/../', '/..']) {
      expect(await outcome(jail.mkdir(fx.rootFd, p, 0o755))).toBe('EEXIST');
      expect(await outcome(jail.rmdir(fx.rootFd, p))).toBe('EINVAL');
      expect(await outcome(jail.unlink(fx.rootFd, p))).toBe('EINVAL');
      expect(await outcome(jail.rename(fx.rootFd, p, 'x', false))).toBe('EINVAL');
      expect(await outcome(jail.rename(fx.rootFd, 'a', p, false))).toBe('EINVAL');
      expect(await outcome(jail.link(fx.rootFd, 'a', p))).toBe('EINVAL');
      expect(await outcome(jail.symlink(fx.rootFd, 'x', p))).toBe('EINVAL');
    }
    expect(fs.readdirSync(fx.root)).toEqual(['a']);
  });

  it('a trailing slash promises a directory', async () => {
    fs.writeFileSync(inRoot('f'), 'x');
    fs.mkdirSync(inRoot('d'));
    expect(await outcome(jail.unlink(fx.rootFd, 'f/'))).toBe('ENOTDIR');
    expect(await outcome(jail.unlink(fx.rootFd, 'd/'))).toBe('EISDIR');
    expect(await outcome(jail.rename(fx.rootFd, 'f/', 'g', false))).toBe('ENOTDIR');
    expect(await outcome(jail.rename(fx.rootFd, 'f', 'g/', false))).toBe('ENOTDIR');
    expect(await outcome(jail.symlink(fx.rootFd, 'f', 'new/'))).toBe('ENOENT');
    expect(await outcome(jail.link(fx.rootFd, 'f', 'f/'))).toBe('EEXIST');
    expect(await outcome(jail.link(fx.rootFd, 'f/', 'g'))).toBe('ENOTDIR');
    await jail.rename(fx.rootFd, 'd/', 'e/', false);
    expect(fs.readdirSync(fx.root).sort()).toEqual(['e', 'f']);
  });

  it('mutations through symlinked parents stay inside the root', async () => {
    fs.symlinkSync(fx.outside, inRoot('host'));
    fs.symlinkSync('../outside', inRoot('rel'));
    fs.writeFileSync(inRoot('f'), 'x');
    for (const dirLink of ['host', 'rel', '../outside', '/../../outside']) {
      expect(await outcome(jail.mkdir(fx.rootFd, `${dirLink}/new`, 0o755))).toBe('ENOENT');
      expect(await outcome(jail.unlink(fx.rootFd, `${dirLink}/secret`))).toBe('ENOENT');
      expect(await outcome(jail.rmdir(fx.rootFd, `${dirLink}/dir`))).toBe('ENOENT');
      expect(await outcome(jail.rename(fx.rootFd, 'f', `${dirLink}/f`, false))).toBe('ENOENT');
      expect(await outcome(jail.rename(fx.rootFd, `${dirLink}/secret`, 'stolen', false))).toBe('ENOENT');
      expect(await outcome(jail.renameCompat(fx.rootFd, 'f', `${dirLink}/f`))).toBe('ENOENT');
      expect(await outcome(jail.renameCompat(fx.rootFd, `${dirLink}/secret`, 'stolen'))).toBe('ENOENT');
      expect(await outcome(jail.link(fx.rootFd, `${dirLink}/secret`, 'stolen'))).toBe('ENOENT');
      expect(await outcome(jail.link(fx.rootFd, 'f', `${dirLink}/planted`))).toBe('ENOENT');
      expect(await outcome(jail.symlink(fx.rootFd, '/', `${dirLink}/planted`))).toBe('ENOENT');
    }
    expect(fs.existsSync(inRoot('stolen'))).toBe(false);
  });

  it('rename with noReplace refuses to overwrite', async () => {
    fs.writeFileSync(inRoot('a'), 'A');
    fs.writeFileSync(inRoot('b'), 'B');
    expect(await outcome(jail.rename(fx.rootFd, 'a', 'b', true))).toBe('EEXIST');
    expect(fs.readFileSync(inRoot('a'), 'utf8')).toBe('A');
    expect(fs.readFileSync(inRoot('b'), 'utf8')).toBe('B');
    await jail.rename(fx.rootFd, 'a', 'b', false);
    expect(fs.readFileSync(inRoot('b'), 'utf8')).toBe('A');
    expect(fs.existsSync(inRoot('a'))).toBe(false);
    await jail.rename(fx.rootFd, '/b', 'c', true);
    expect(fs.readdirSync(fx.root)).toEqual(['c']);
  });

  it('renameCompat (no renameat2 flags, for NFS) moves files, directories and symlinks but never replaces', async () => {
    fs.writeFileSync(inRoot('a'), 'A');
    fs.writeFileSync(inRoot('b'), 'B');
    fs.mkdirSync(inRoot('d'));
    fs.mkdirSync(inRoot('e'));
    fs.symlinkSync('/../outside/secret', inRoot('l'));
    // Every kind onto a taken name: EEXIST, both sides unchanged.
    expect(await outcome(jail.renameCompat(fx.rootFd, 'a', 'b'))).toBe('EEXIST');
    expect(await outcome(jail.renameCompat(fx.rootFd, 'd', 'e'))).toBe('EEXIST');
    expect(await outcome(jail.renameCompat(fx.rootFd, 'l', 'a'))).toBe('EEXIST');
    expect(await outcome(jail.renameCompat(fx.rootFd, 'a', 'a'))).toBe('EEXIST');
    expect([fs.readFileSync(inRoot('a'), 'utf8'), fs.readFileSync(inRoot('b'), 'utf8')]).toEqual(['A', 'B']);
    // A file moves by hard link + unlink: one name, one link, same contents.
    await jail.renameCompat(fx.rootFd, '/a', 'd/a2');
    expect(fs.existsSync(inRoot('a'))).toBe(false);
    expect(fs.readFileSync(inRoot('d/a2'), 'utf8')).toBe('A');
    expect(fs.statSync(inRoot('d/a2')).nlink).toBe(1);
    // A directory and a symlink move by rename; the link is moved, not followed.
    await jail.renameCompat(fx.rootFd, 'd', 'e/d2');
    expect(fs.readFileSync(inRoot('e/d2/a2'), 'utf8')).toBe('A');
    await jail.renameCompat(fx.rootFd, 'l', 'e/l2');
    expect(fs.readlinkSync(inRoot('e/l2'))).toBe('/../outside/secret');
    // Errors of a plain rename stay: a missing source, a directory into itself, a trailing slash on a file.
    expect(await outcome(jail.renameCompat(fx.rootFd, 'nope', 'x'))).toBe('ENOENT');
    expect(await outcome(jail.renameCompat(fx.rootFd, 'e', 'e/d2/inside'))).toBe('EINVAL');
    expect(await outcome(jail.renameCompat(fx.rootFd, 'b/', 'x'))).toBe('ENOTDIR');
    expect(fs.readdirSync(fx.root).sort()).toEqual(['b', 'e']);
  });

  it('Jail.rename without overwrite answers as renameat2 would (EEXIST, EINVAL for a directory into itself)', async () => {
    const j = new Jail(fx.root);
    try {
      fs.writeFileSync(inRoot('a'), 'A');
      fs.writeFileSync(inRoot('b'), 'B');
      fs.mkdirSync(inRoot('d'));
      expect(await outcome(j.rename('/a', '/b', false))).toBe('EEXIST');
      // renameat2 answers EINVAL here; the compat path is tried and answers EINVAL too.
      expect(await outcome(j.rename('/d', '/d/inside', false))).toBe('EINVAL');
      await j.rename('/a', '/c', false);
      expect(fs.readdirSync(fx.root).sort()).toEqual(['b', 'c', 'd']);
    } finally {
      await j.close();
    }
  });

  it('rename onto a symlink replaces the link, not its target', async () => {
    fs.writeFileSync(inRoot('target'), 'keep');
    fs.writeFileSync(inRoot('src'), 'new');
    fs.symlinkSync('target', inRoot('link'));
    await jail.rename(fx.rootFd, 'src', 'link', false);
    expect(fs.readFileSync(inRoot('target'), 'utf8')).toBe('keep');
    expect(fs.lstatSync(inRoot('link')).isFile()).toBe(true);
  });

  it('rename of a directory into itself fails with EINVAL', async () => {
    fs.mkdirSync(inRoot('d', 'sub'), { recursive: true });
    expect(await outcome(jail.rename(fx.rootFd, 'd', 'd/sub/d', false))).toBe('EINVAL');
  });

  it('link of a symlink links the link', async () => {
    fs.writeFileSync(inRoot('target'), 'x');
    fs.symlinkSync('target', inRoot('l'));
    await jail.link(fx.rootFd, 'l', 'l2');
    expect(fs.lstatSync(inRoot('l2')).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(inRoot('l')).nlink).toBe(2);
    expect(fs.statSync(inRoot('target')).nlink).toBe(1);
    fs.symlinkSync(path.join(fx.outside, 'secret'), inRoot('host'));
    await jail.link(fx.rootFd, 'host', 'host2');
    expect(fs.statSync(path.join(fx.outside, 'secret')).nlink).toBe(1);
  });

  it('link of a directory fails with EPERM', async () => {
    fs.mkdirSync(inRoot('d'));
    expect(await outcome(jail.link(fx.rootFd, 'd', 'd2'))).toBe('EPERM');
  });

  it('symlink stores the target verbatim and never resolves it', async () => {
    await jail.symlink(fx.rootFd, '../../outside/secret', 'a');
    await jail.symlink(fx.rootFd, path.join(fx.outside, 'secret'), '/b');
    expect(fs.readlinkSync(inRoot('a'))).toBe('../../outside/secret');
    expect(fs.readlinkSync(inRoot('b'))).toBe(path.join(fx.outside, 'secret'));
    expect(await outcome(jail.symlink(fx.rootFd, 'x', 'a'))).toBe('EEXIST');
    expect(await outcome(jail.symlink(fx.rootFd, '', 'c'))).toBe('ENOENT');
  });
});

describe('setstat', () => {
  it('setstat masks mode to 0777', async () => {
    fs.writeFileSync(inRoot('f'), '');
    fs.mkdirSync(inRoot('d'));
    await jail.setstat(fx.rootFd, 'f', true, { mode: 0o4777 });
    await jail.setstat(fx.rootFd, 'd', true, { mode: 0o1700 });
    expect(fs.statSync(inRoot('f')).mode & 0o7777).toBe(0o777);
    expect(fs.statSync(inRoot('d')).mode & 0o7777).toBe(0o700);
  });

  it('setstat sets size and times, following links only when asked', async () => {
    fs.writeFileSync(inRoot('f'), '0123456789');
    fs.symlinkSync('f', inRoot('l'));
    await jail.setstat(fx.rootFd, 'l', true, { size: 4, atime: 1_500_000_000, mtime: 1_600_000_000 });
    const st = fs.statSync(inRoot('f'));
    expect(st.size).toBe(4);
    expect(st.atimeMs).toBe(1_500_000_000_000);
    expect(st.mtimeMs).toBe(1_600_000_000_000);

    await jail.setstat(fx.rootFd, 'f', true, { mtime: 1_700_000_000 });
    expect(fs.statSync(inRoot('f')).atimeMs).toBe(1_500_000_000_000); // UTIME_OMIT for atime

    await jail.setstat(fx.rootFd, 'l', false, { mtime: 1_234_567_890 });
    expect(fs.lstatSync(inRoot('l')).mtimeMs).toBe(1_234_567_890_000);
    expect(fs.statSync(inRoot('f')).mtimeMs).toBe(1_700_000_000_000);
    expect(await outcome(jail.setstat(fx.rootFd, 'l', false, { mode: 0o600 }))).toBe('EOPNOTSUPP');
    expect(await outcome(jail.setstat(fx.rootFd, 'l', false, { size: 0 }))).toBe('EINVAL');
  });

  it('setstat truncates regular files only', async () => {
    fs.mkdirSync(inRoot('d'));
    mkfifo(inRoot('fifo'));
    fs.writeFileSync(inRoot('f'), 'abc');
    expect(await outcome(jail.setstat(fx.rootFd, 'd', true, { size: 0 }))).toBe('EISDIR');
    expect(await outcome(jail.setstat(fx.rootFd, 'fifo', true, { size: 0 }))).toBe('EINVAL');
    expect(await outcome(jail.setstat(fx.rootFd, 'f', true, { size: -1 }))).toBe('EINVAL');
    expect(fs.readFileSync(inRoot('f'), 'utf8')).toBe('abc');
  });

  it('setstat through a symlink pointing outside changes nothing outside', async () => {
    fs.symlinkSync(path.join(fx.outside, 'secret'), inRoot('host'));
    fs.symlinkSync('../outside/secret', inRoot('rel'));
    fs.symlinkSync('../../outside/dir', inRoot('reldir'));
    const attrs = { mode: 0o777, size: 0, atime: 1_500_000_000, mtime: 1_500_000_000 };
    for (const p of ['host', 'rel', 'reldir', '../outside/secret', '/../outside/dir']) {
      expect(await outcome(jail.setstat(fx.rootFd, p, true, attrs))).toBe('ENOENT');
      expect(await outcome(jail.setstat(fx.rootFd, p, true, { mode: 0o777 }))).toBe('ENOENT');
    }
    // Without following, only the links' own times can change.
    await jail.setstat(fx.rootFd, 'host', false, { atime: 1_500_000_000, mtime: 1_500_000_000 });
    expect(fs.lstatSync(inRoot('host')).mtimeMs).toBe(1_500_000_000_000);
  });

  it('fsetstat changes size, mode and times of an open file', async () => {
    fs.writeFileSync(inRoot('f'), '0123456789');
    const { fd } = await jail.open(fx.rootFd, 'f', O_RDWR, 0);
    try {
      await jail.fsetstat(fd, { size: 3, mode: 0o2640, atime: 1_400_000_000, mtime: 1_410_000_000 });
    } finally {
      jail.closeFd(fd);
    }
    const st = fs.statSync(inRoot('f'));
    expect(st.size).toBe(3);
    expect(st.mode & 0o7777).toBe(0o640);
    expect([st.atimeMs, st.mtimeMs]).toEqual([1_400_000_000_000, 1_410_000_000_000]);
  });
});

describe('statvfs and copyRange', () => {
  it('statvfs and fstatvfs describe the filesystem', async () => {
    fs.writeFileSync(inRoot('f'), '');
    const v = await jail.statvfs(fx.rootFd, '/f');
    expect(v.bsize).toBeGreaterThan(0);
    expect(v.namemax).toBeGreaterThan(0);
    expect(v.blocks).toBeGreaterThanOrEqual(v.bfree);
    const { fd } = await jail.open(fx.rootFd, 'f', O_RDONLY, 0);
    try {
      expect((await jail.fstatvfs(fd)).fsid).toBe(v.fsid);
    } finally {
      jail.closeFd(fd);
    }
    expect(await outcome(jail.statvfs(fx.rootFd, '../outside/secret'))).toBe('ENOENT');
  });

  it('copyRange copies a range, or to the end of input', async () => {
    fs.writeFileSync(inRoot('src'), 'abcdefghij');
    const src = await jail.open(fx.rootFd, 'src', O_RDONLY, 0);
    const dst = await jail.open(fx.rootFd, 'dst', O_RDWR | O_CREAT, 0o644);
    try {
      expect(await jail.copyRange(src.fd, 2, 3, dst.fd, 0)).toBe(3);
      expect(await jail.copyRange(src.fd, 5, 0, dst.fd, 3)).toBe(5);
      expect(await jail.copyRange(src.fd, 100, 0, dst.fd, 8)).toBe(0);
    } finally {
      jail.closeFd(src.fd);
      jail.closeFd(dst.fd);
    }
    expect(fs.readFileSync(inRoot('dst'), 'utf8')).toBe('cdefghij');
  });

  it('copyRange falls back to read/write where copy_file_range refuses', async () => {
    fs.writeFileSync(inRoot('src'), 'abc');
    fs.writeFileSync(inRoot('dst'), 'XY');
    const src = await jail.open(fx.rootFd, 'src', O_RDONLY, 0);
    const dst = await jail.open(fx.rootFd, 'dst', O_WRONLY | O_APPEND, 0);
    try {
      expect(await jail.copyRange(src.fd, 0, 0, dst.fd, 0)).toBe(3);
      // Same file, overlapping ranges: copy_file_range says EINVAL.
      const same = await jail.open(fx.rootFd, 'src', O_RDWR, 0);
      try {
        expect(await jail.copyRange(same.fd, 0, 3, same.fd, 1)).toBe(3);
      } finally {
        jail.closeFd(same.fd);
      }
    } finally {
      jail.closeFd(src.fd);
      jail.closeFd(dst.fd);
    }
    expect(fs.readFileSync(inRoot('dst'), 'utf8')).toBe('XYabc');
    expect(fs.readFileSync(inRoot('src'), 'utf8').slice(0, 2)).toBe('aa');
  });
});

describe('errors and resources', () => {
  it('errors carry codes and no paths', async () => {
    mkfifo(inRoot('fifo'));
    fs.writeFileSync(inRoot('f'), '');
    fs.symlinkSync('self', inRoot('self'));
    const attempts: Array<Promise<unknown>> = [
      jail.open(fx.rootFd, 'missing', O_RDONLY, 0),
      jail.open(fx.rootFd, 'fifo', O_RDONLY, 0),
      jail.open(fx.rootFd, '/', O_RDONLY, 0),
      jail.stat(fx.rootFd, 'self', true),
      jail.mkdir(fx.rootFd, 'f', 0o755),
      jail.rmdir(fx.rootFd, '/'),
      jail.rename(fx.rootFd, 'missing', 'x', true),
      jail.link(fx.rootFd, 'f', 'f'),
      jail.readlink(fx.rootFd, 'f'),
      jail.realpath(fx.rootFd, 'a/b/c'),
      jail.opendir(fx.rootFd, 'f'),
      jail.setstat(fx.rootFd, 'missing', true, { mode: 0o600 }),
      jail.statvfs(fx.rootFd, 'missing'),
    ];
    const known = new Set(['ENOENT', 'ENOTREG', 'EISDIR', 'ELOOP', 'EEXIST', 'EBUSY', 'EINVAL', 'ENOTDIR']);
    for (const result of await Promise.allSettled(attempts)) {
      const err: unknown = result.status === 'rejected' ? result.reason : undefined;
      expect(jail.isJailError(err)).toBe(true);
      if (!jail.isJailError(err)) continue;
      expect(known.has(err.code)).toBe(true);
      expect(err.errno).toBeGreaterThan(0);
      expect(err.syscall.length).toBeGreaterThan(0);
      expect(err.message.startsWith(`${err.code}: `)).toBe(true);
      const everything = JSON.stringify(err, Object.getOwnPropertyNames(err));
      expect(everything.includes(fx.tmp)).toBe(false);
      expect(everything.includes('missing')).toBe(false);
    }
    let syncErr: unknown;
    try {
      jail.openRoot(path.join(fx.tmp, 'nope'));
    } catch (e) {
      syncErr = e;
    }
    expect(jail.isJailError(syncErr) && syncErr.message.includes(fx.tmp)).toBe(false);
    expect(jail.isJailError(syncErr) && syncErr.code).toBe('ENOENT');
  });

  it('no fd leaks after 1000 failing and succeeding ops', async () => {
    mkfifo(inRoot('fifo'));
    fs.writeFileSync(inRoot('f'), 'data');
    fs.symlinkSync('/nowhere/x', inRoot('dangling'));
    const once = async (i: number): Promise<void> => {
      const ops: Array<Promise<unknown>> = [
        jail.open(fx.rootFd, 'f', O_RDONLY, 0).then(({ fd }) => jail.closeFd(fd)),
        jail.open(fx.rootFd, 'fifo', O_RDONLY, 0),
        jail.open(fx.rootFd, 'missing', O_RDONLY, 0),
        jail.open(fx.rootFd, 'dangling', O_WRONLY | O_CREAT, 0o644),
        jail.open(fx.rootFd, `n${i}`, O_WRONLY | O_CREAT | O_EXCL, 0o644).then(({ fd }) => {
          jail.closeFd(fd);
          return jail.unlink(fx.rootFd, `n${i}`);
        }),
        jail.stat(fx.rootFd, 'f', false),
        jail.mkdir(fx.rootFd, `d${i}`, 0o755).then(() => jail.rmdir(fx.rootFd, `d${i}`)),
        jail.rmdir(fx.rootFd, 'missing/x'),
        jail.rename(fx.rootFd, 'f', 'f', true),
        jail.link(fx.rootFd, 'f', 'missing/x'),
        jail.symlink(fx.rootFd, 't', 'f'),
        jail.readlink(fx.rootFd, 'dangling'),
        jail.realpath(fx.rootFd, 'missing/x'),
        jail.realpath(fx.rootFd, 'dangling'),
        jail.setstat(fx.rootFd, 'f', true, { size: 4, mode: 0o644, mtime: 1_500_000_000 }),
        jail.setstat(fx.rootFd, 'fifo', true, { size: 0 }),
        jail.statvfs(fx.rootFd, '/'),
        jail.opendir(fx.rootFd, '/').then(async (d) => {
          await jail.readdir(d, 2);
          await jail.closedir(d);
        }),
        jail.opendir(fx.rootFd, 'f'),
      ];
      await Promise.allSettled(ops);
    };
    await once(-1); // warm up lazily allocated fds (thread pool, etc.)
    const before = fdCount();
    for (let i = 0; i < 1000; i++) await once(i);
    expect(fdCount()).toBe(before);
    // The dangling link's target directory does not exist, so the creates above failed.
    expect(fs.existsSync(inRoot('nowhere'))).toBe(false);
  }, 60_000);
});

describe('races', () => {
  it('swapping a directory with an escaping symlink never lets a read or create out', async () => {
    fs.writeFileSync(path.join(fx.outside, 'passwd'), SECRET);
    outsideBefore = snapshot(fx.outside);
    fs.mkdirSync(inRoot('d'));
    fs.writeFileSync(inRoot('d', 'passwd'), 'inside');
    fs.symlinkSync('../outside', inRoot('L'));

    // A second "session" on another thread swaps d <-> L as fast as it can.
    const stop = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const fs = require('node:fs');
       const [stop, root] = workerData;
       const p = (n) => root + '/' + n;
       while (Atomics.load(stop, 0) === 0) {
         try { fs.renameSync(p('d'), p('D')); fs.renameSync(p('L'), p('d'));
               fs.renameSync(p('d'), p('L')); fs.renameSync(p('D'), p('d')); } catch {}
         Atomics.add(stop, 1, 1);
       }`,
      { eval: true, workerData: [stop, fx.root] },
    );
    let reads = 0;
    let missed = 0;
    try {
      const deadline = Date.now() + 1500;
      for (let i = 0; Date.now() < deadline; i++) {
        const batch: Array<Promise<void>> = [];
        for (let k = 0; k < 32; k++) {
          const n = i * 32 + k;
          batch.push(
            readVirtual('d/passwd').then(
              (text) => {
                reads++;
                expect(text).toBe('inside');
              },
              () => void missed++,
            ),
            jail
              .open(fx.rootFd, `d/new-${n}`, O_WRONLY | O_CREAT, 0o644)
              .then(({ fd }) => jail.closeFd(fd))
              .catch(() => undefined),
            jail.mkdir(fx.rootFd, `d/dir-${n}`, 0o755).catch(() => undefined),
            jail.setstat(fx.rootFd, 'd/passwd', true, { mode: 0o600 }).catch(() => undefined),
          );
        }
        await Promise.all(batch);
      }
    } finally {
      Atomics.store(stop, 0, 1);
      await worker.terminate();
    }
    expect(Atomics.load(stop, 1)).toBeGreaterThan(0);
    expect(reads).toBeGreaterThan(0);
    expect(missed).toBeGreaterThan(0); // the race really happened
    // afterEach checks that <tmp>/outside is byte-for-byte unchanged.
  }, 20_000);
});
