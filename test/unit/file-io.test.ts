import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dir, type DirectoryResult } from 'tmp-promise';
import { join } from 'node:path';
import { FileIo } from '../../src/jail/file-io.js';

let tmp: DirectoryResult;
const DATA = randomBytes(16 * 1000 + 123);
beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
  writeFileSync(join(tmp.path, 'data'), DATA);
});
afterAll(() => tmp.cleanup());

function withFd<T>(name: string, flags: string, fn: (io: FileIo) => Promise<T>): Promise<T> {
  const fd = openSync(name.startsWith('/') ? name : join(tmp.path, name), flags);
  return fn(new FileIo(fd)).finally(() => closeSync(fd));
}

describe('FileIo: merged reads and writes of one file', () => {
  it('contiguous reads queued together are one job after the first, and each gets its own bytes', async () => {
    await withFd('data', 'r', async (io) => {
      const bufs = Array.from({ length: 17 }, () => Buffer.alloc(1000));
      const counts = await Promise.all(bufs.map((b, i) => io.read(i * 1000, b)));
      expect(io.jobs).toBe(2);
      // The read that crosses the end gets the tail; the one after it gets 0 (end of file).
      expect(counts).toEqual([...Array(16).fill(1000), 123]);
      expect(Buffer.concat(bufs.map((b, i) => b.subarray(0, counts[i])))).toEqual(DATA);
      const past = Buffer.alloc(10);
      expect(await io.read(DATA.length, past)).toBe(0);
    });
  });

  it('reads that do not continue each other are not merged', async () => {
    await withFd('data', 'r', async (io) => {
      const a = Buffer.alloc(100);
      const b = Buffer.alloc(100);
      const c = Buffer.alloc(100);
      await Promise.all([io.read(0, a), io.read(5000, b), io.read(200, c)]);
      expect(io.jobs).toBe(3);
      expect([a, b, c]).toEqual([DATA.subarray(0, 100), DATA.subarray(5000, 5100), DATA.subarray(200, 300)]);
    });
  });

  it('contiguous writes are merged, and overlapping writes land in the order they arrived', async () => {
    writeFileSync(join(tmp.path, 'out'), '');
    await withFd('out', 'r+', async (io) => {
      await Promise.all([io.write(0, Buffer.from('aaaa')), io.write(4, Buffer.from('bbbb')), io.write(8, Buffer.from('cccc')), io.write(2, Buffer.from('XX')), io.write(2, Buffer.from('YY'))]);
      expect(io.jobs).toBe(4); // 'aaaa' alone, 'bbbb'+'cccc' merged, then the two overlapping writes
    });
    expect(readFileSync(join(tmp.path, 'out'), 'utf8')).toBe('aaYYbbbbcccc');
  });

  it('a failing write rejects every op of its job with the error (ENOSPC from /dev/full)', async () => {
    await withFd('/dev/full', 'w', async (io) => {
      const results = await Promise.allSettled([io.write(0, Buffer.from('x')), io.write(1, Buffer.from('y')), io.write(2, Buffer.from('z'))]);
      expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok'))).toEqual(['ENOSPC', 'ENOSPC', 'ENOSPC']);
    });
  });
});
