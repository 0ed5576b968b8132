/**
 * Usage accounting of QuotaFileSystem over a real jail on a temporary directory: after every step
 * the count equals an independent walk of the directory (test/helpers/du.ts).
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile, mkdir, link } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Jail } from '../../../src/jail/jail.js';
import { Ledger } from '../../../src/quota/ledger.js';
import { QuotaFileSystem } from '../../../src/quota/quota-fs.js';
import { walk } from '../../../src/fs/walk.js';
import { QuotaExceeded } from '../../../src/errors.js';
import type { DirReader, FileSystem, OpenFile, OpenFlags } from '../../../src/fs/file-system.js';
import type { QuotaLimits } from '../../../src/quota/usage.js';
import { du } from '../../helpers/du.js';

const W: OpenFlags = { read: false, write: true, append: false, creat: true, trunc: true, excl: false };
const WRITE_ONLY: OpenFlags = { ...W, creat: false, trunc: false };
const READ: OpenFlags = { read: true, write: false, append: false, creat: false, trunc: false, excl: false };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(limits: QuotaLimits | undefined = undefined) {
  const root = await mkdtemp(join(tmpdir(), 'quota-unit-'));
  const jail = new Jail(root);
  cleanups.push(() => rm(root, { recursive: true, force: true }), () => jail.close());
  const ledger = new Ledger();
  let current = limits;
  const fs = new QuotaFileSystem(jail, ledger, () => current);
  const exact = async (why: string) => expect(ledger.usage(), why).toEqual(await du(root));
  return { root, jail, ledger, fs, exact, setLimits: (l: QuotaLimits | undefined) => (current = l) };
}

/** `target` with some methods replaced (its own keep their private state: they are bound to it). */
function overriding<T extends object>(target: T, over: Partial<T>): T {
  return new Proxy(target, {
    get: (t, k) => {
      if (k in over) return over[k as keyof T];
      const v: unknown = Reflect.get(t, k, t);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

async function put(fs: FileSystem, path: string, data: Buffer | string, flags = W): Promise<void> {
  const f = await fs.open(path, flags, 0o644);
  try {
    await f.write(0, Buffer.from(data));
  } finally {
    await f.close();
  }
}

describe('quota accounting through the FileSystem', () => {
  it('stays equal to a walk of the root through writes, overwrites, truncation, links, renames, copies and removals', async () => {
    const { fs, exact } = await setup();
    await put(fs, '/a', 'x'.repeat(1000));
    await exact('a new file');
    await put(fs, '/a', 'y'.repeat(300));
    await exact('overwritten with truncation');
    const f = await fs.open('/a', WRITE_ONLY, 0o644);
    await f.write(5000, Buffer.from('tail'));
    await f.write(10, Buffer.from('inside'));
    await f.close();
    await exact('extended past a hole, then written inside');
    await fs.setstat('/a', { size: 100 });
    await exact('truncated by SETSTAT');
    const g = await fs.open('/a', WRITE_ONLY, 0o644);
    await g.fsetstat({ size: 2000 });
    await g.close();
    await exact('extended by FSETSTAT');
    await fs.mkdir('/d', 0o755);
    await fs.symlink('/a', '/d/s');
    await exact('a directory and a symlink');
    await fs.link('/a', '/d/hard');
    await exact('a hard link adds nothing');
    await fs.remove('/a');
    await exact('one of two names removed: the bytes stay');
    await put(fs, '/b', 'b'.repeat(700));
    await fs.rename('/b', '/d/hard', true);
    await exact('posix-rename over the last name of a file frees it');
    await put(fs, '/c', 'c'.repeat(50));
    await expect(fs.rename('/c', '/d/hard', false)).rejects.toMatchObject({ code: 'EEXIST' });
    await exact('a plain rename onto an existing name changes nothing');
    const src = await fs.open('/d/hard', READ, 0);
    const dst = await fs.open('/copy', W, 0o644);
    expect(await src.copyTo(dst, 0, 0, 100)).toBe(700);
    await Promise.all([src.close(), dst.close()]);
    await exact('copy-data to end of file at an offset');
    await fs.remove('/d/s');
    await fs.remove('/d/hard');
    await fs.rmdir('/d');
    await exact('symlink, file and directory removed');
  });

  it('counts a file once across several handles and after its last name goes while it is open', async () => {
    const { fs, exact } = await setup();
    const [a, b] = [await fs.open('/f', W, 0o644), await fs.open('/f', WRITE_ONLY, 0o644)];
    await Promise.all([a.write(0, Buffer.alloc(100)), b.write(50, Buffer.alloc(100))]);
    await exact('two handles extending one file');
    await fs.remove('/f');
    await a.write(150, Buffer.alloc(1000));
    await exact('writes to a removed, still open file do not count');
    await Promise.all([a.close(), b.close()]);
    await exact('closed');
  });

  it('refuses growth past the byte quota and allows shrinking and writes inside the file', async () => {
    const { fs, exact, ledger } = await setup({ bytes: 1000 });
    await put(fs, '/a', Buffer.alloc(900));
    const f = await fs.open('/a', WRITE_ONLY, 0o644);
    await expect(f.write(900, Buffer.alloc(101))).rejects.toBeInstanceOf(QuotaExceeded);
    await f.write(900, Buffer.alloc(100));
    await f.write(0, Buffer.alloc(500));
    await expect(f.fsetstat({ size: 1001 })).rejects.toBeInstanceOf(QuotaExceeded);
    await f.fsetstat({ size: 10 });
    await f.close();
    await expect(fs.setstat('/a', { size: 5000 })).rejects.toBeInstanceOf(QuotaExceeded);
    await exact('refused requests changed nothing');
    expect(ledger.usage().bytes).toBe(10);
  });

  it('refuses a new name when the files quota is full, and allows overwriting an existing file', async () => {
    const { fs, exact } = await setup({ files: 2 });
    await put(fs, '/a', 'a');
    await fs.mkdir('/d', 0o755);
    await expect(put(fs, '/b', 'b')).rejects.toBeInstanceOf(QuotaExceeded);
    await expect(fs.mkdir('/e', 0o755)).rejects.toBeInstanceOf(QuotaExceeded);
    await expect(fs.symlink('/a', '/s')).rejects.toBeInstanceOf(QuotaExceeded);
    await put(fs, '/a', 'overwritten');
    const staged = await fs.open('/a', { ...W, excl: true, trunc: false }, 0o644, '/.staged-a');
    await staged.write(0, Buffer.from('atomic overwrite'));
    await staged.close();
    await fs.rename('/.staged-a', '/a', true);
    await exact('only refused names were not made');
  });

  it('a limit changed while a file is open applies to its next write', async () => {
    const { fs, setLimits } = await setup({ bytes: 10_000 });
    const f = await fs.open('/a', W, 0o644);
    await f.write(0, Buffer.alloc(500));
    setLimits({ bytes: 600 });
    await expect(f.write(500, Buffer.alloc(200))).rejects.toBeInstanceOf(QuotaExceeded);
    setLimits(undefined);
    await f.write(500, Buffer.alloc(200));
    await f.close();
  });

  it('re-reads the size of a file whose write failed partway, so the count stays exact', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quota-unit-'));
    const jail = new Jail(root);
    cleanups.push(() => rm(root, { recursive: true, force: true }), () => jail.close());
    // A disk that fills up halfway through a write: half the bytes land, then ENOSPC.
    const halfFull = overriding<FileSystem>(jail, {
      open: async (p: string, fl: OpenFlags, m: number): Promise<OpenFile> => {
        const f = await jail.open(p, fl, m);
        return overriding<OpenFile>(f, {
          write: async (pos: number, data: Buffer) => {
            await f.write(pos, data.subarray(0, data.length / 2));
            throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
          },
        });
      },
    });
    const ledger = new Ledger();
    const fs = new QuotaFileSystem(halfFull, ledger, () => ({ bytes: 1 << 20 }));
    const f = await fs.open('/a', W, 0o644);
    await expect(f.write(0, Buffer.alloc(1000))).rejects.toMatchObject({ code: 'ENOSPC' });
    await f.close();
    expect(ledger.usage()).toEqual({ bytes: 500, files: 1 });
    expect(await du(root)).toEqual({ bytes: 500, files: 1 });
  });

  it('is exact after a walk during which files were written, created, removed and replaced', async () => {
    const { root, jail, fs, ledger, exact } = await setup();
    await mkdir(join(root, 'early/deep'), { recursive: true });
    await mkdir(join(root, 'late'));
    for (const d of ['early', 'early/deep', 'late']) for (const n of ['1', '2', '3']) await writeFile(join(root, d, n), n.repeat(100 * Number(n)));
    await link(join(root, 'early/1'), join(root, 'late/hard1'));
    // The walk pauses halfway through /late (read two entries at a time), before /early, until released.
    let release!: () => void;
    const paused = new Promise<void>((r) => (release = r));
    let pauses = 0;
    const gated = overriding<FileSystem>(jail, {
      opendir: async (p: string): Promise<DirReader> => {
        const d = await jail.opendir(p);
        return { next: async (max) => (pauses++ === 3 ? await paused : undefined, d.next(max)), close: () => d.close() };
      },
    });
    ledger.beginScan();
    const walking = walk(gated, ({ stat }) => ledger.walked(stat), { batch: 2 });
    while (pauses < 4) await new Promise((r) => setImmediate(r));
    await put(fs, '/late/new', 'n'.repeat(50));
    await put(fs, '/early/1', 'rewritten');
    await fs.remove('/late/3');
    await fs.remove('/early/deep/2');
    await fs.mkdir('/late/dir', 0o755);
    await put(fs, '/x', 'x'.repeat(10));
    await fs.rename('/x', '/late/2', true);
    const f = await fs.open('/early/2', WRITE_ONLY, 0o644);
    await f.write(1000, Buffer.from('grown'));
    release();
    await walking;
    await f.close();
    ledger.endScan();
    await exact('after the walk');
    await put(fs, '/after', 'a'.repeat(10));
    await exact('changes after the walk add to it');
  });
});
