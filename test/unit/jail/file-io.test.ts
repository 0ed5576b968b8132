import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dir, type DirectoryResult } from 'tmp-promise';
import { join } from 'node:path';
import { FileIo } from '../../../src/jail/file-io.js';

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

  it('random bursts of writes and reads give the same bytes as doing them one by one in arrival order', async () => {
    let seed = 12345;
    // mulberry32: a small deterministic generator (exact in 32-bit integer arithmetic).
    const rnd = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    let merged = 0;
    writeFileSync(join(tmp.path, 'model'), '');
    let model = Buffer.alloc(0);
    await withFd('model', 'r+', async (io) => {
      for (let round = 0; round < 200; round++) {
        const ops: Promise<unknown>[] = [];
        const reads: { pos: number; buf: Buffer; expect: Buffer }[] = [];
        let next = rnd(3) === 0 ? rnd(200_000) : model.length; // contiguous runs from here, sometimes elsewhere
        for (let k = rnd(12) + 1; k > 0; k--) {
          const pos = rnd(4) === 0 ? rnd(200_000) : next;
          if (rnd(3) === 0) {
            const buf = Buffer.alloc(rnd(5000) + 1);
            // What a read at this point of the arrival order sees.
            const expectBuf = model.subarray(Math.min(pos, model.length), Math.min(pos + buf.length, model.length));
            reads.push({ pos, buf, expect: Buffer.from(expectBuf) });
            ops.push(io.read(pos, buf).then((n) => expect(buf.subarray(0, n)).toEqual(reads.find((r) => r.buf === buf)!.expect)));
            next = pos + buf.length;
          } else {
            const data = Buffer.alloc(rnd(5000) + 1, rnd(256));
            if (pos + data.length > model.length) model = Buffer.concat([model, Buffer.alloc(pos + data.length - model.length)]);
            data.copy(model, pos);
            ops.push(io.write(pos, data));
            next = pos + data.length;
          }
        }
        const jobsBefore = io.jobs;
        await Promise.all(ops);
        if (io.jobs - jobsBefore < ops.length) merged++;
      }
      expect(merged).toBeGreaterThan(50); // rounds in which some ops shared a job
    });
    const disk = readFileSync(join(tmp.path, 'model'));
    expect(disk.length).toBe(model.length);
    expect(disk.equals(model)).toBe(true);
  });

  it('a failing write rejects every op of its job with the error (ENOSPC from /dev/full)', async () => {
    await withFd('/dev/full', 'w', async (io) => {
      const results = await Promise.allSettled([io.write(0, Buffer.from('x')), io.write(1, Buffer.from('y')), io.write(2, Buffer.from('z'))]);
      expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok'))).toEqual(['ENOSPC', 'ENOSPC', 'ENOSPC']);
    });
  });
});
