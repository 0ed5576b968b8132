import { describe, it, expect, vi, afterEach } from 'vitest';
import { HeadCache } from '../../../src/sftp/head-cache.js';
import type { FileHandle } from '../../../src/sftp/handles.js';
import { TransferStats } from '../../../src/sftp/transfer.js';
import { fakeFile } from './fakes.js';

const flags = { read: true, write: false, append: false, creat: false, trunc: false, excl: false };

/** A handle whose file came with `head`; reads that reach the disk fill 'D'. */
function opened(cache: HeadCache, head: Buffer | undefined) {
  const disk = { reads: 0 };
  const file = fakeFile({ head, read: async (_p, into) => (disk.reads++, into.fill('D'.charCodeAt(0)).length) });
  const h: FileHandle = { kind: 'file', path: '/f', file, stats: new TransferStats('/f', flags, 0, false), head: cache.stamp(file) };
  return { h, disk };
}
const readAll = async (cache: HeadCache, h: FileHandle, offset = 0, len = 5) => {
  const into = Buffer.alloc(len);
  const n = await cache.read(h, offset, into);
  return into.subarray(0, n).toString();
};

afterEach(() => vi.useRealTimers());

describe('HeadCache', () => {
  it('a READ right after OPEN is answered from the content read at OPEN, without the disk', async () => {
    const cache = new HeadCache();
    const { h, disk } = opened(cache, Buffer.from('hello'));
    expect(await readAll(cache, h, 1, 3)).toBe('ell');
    expect(disk.reads).toBe(0);
  });

  it('after a request that changes files, READs go to the disk', async () => {
    const cache = new HeadCache();
    const { h, disk } = opened(cache, Buffer.from('hello'));
    cache.changed();
    expect(await readAll(cache, h)).toBe('DDDDD');
    expect(disk.reads).toBe(1);
  });

  it('after 100 ms, READs go to the disk', async () => {
    vi.useFakeTimers();
    const cache = new HeadCache();
    const { h } = opened(cache, Buffer.from('hello'));
    vi.advanceTimersByTime(101);
    expect(await readAll(cache, h)).toBe('DDDDD');
  });

  it('end of file is answered from the head once; the next READ asks the disk (a growing file)', async () => {
    const cache = new HeadCache();
    const { h, disk } = opened(cache, Buffer.from('hello'));
    expect(await readAll(cache, h, 5)).toBe('');
    expect(await readAll(cache, h, 5)).toBe('DDDDD');
    expect(disk.reads).toBe(1);
  });

  it('a file opened without its content gets no stamp and reads the disk', async () => {
    const cache = new HeadCache();
    const { h, disk } = opened(cache, undefined);
    expect(h.head).toBeUndefined();
    await readAll(cache, h);
    expect(disk.reads).toBe(1);
  });
});
