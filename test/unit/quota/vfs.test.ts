import { describe, it, expect } from 'vitest';
import { quotaVfs } from '../../../src/quota/vfs.js';
import type { VfsStat } from '../../../src/fs/file-system.js';

const disk: VfsStat = { bsize: 4096, frsize: 4096, blocks: 1_000_000, bfree: 500_000, bavail: 400_000, files: 1_000_000, ffree: 900_000, favail: 900_000, fsid: 7, flag: 0, namemax: 255 };

describe('statvfs for a user with a quota', () => {
  it('reports the byte quota as the size and what is left of it as free, in f_frsize units', () => {
    const v = quotaVfs(disk, { bytes: 4096 * 10, files: 3 }, { bytes: 4096 * 100 });
    expect([v.blocks, v.bfree, v.bavail]).toEqual([100, 90, 90]);
    expect([v.files, v.ffree], 'no files quota: the disk').toEqual([disk.files, disk.ffree]);
  });

  it('reports the files quota as files and what is left of it as free', () => {
    const v = quotaVfs(disk, { bytes: 0, files: 30 }, { files: 50 });
    expect([v.files, v.ffree, v.favail]).toEqual([50, 20, 20]);
    expect(v.blocks, 'no byte quota: the disk').toBe(disk.blocks);
  });

  it("never reports more free space than the disk has, nor less than nothing when over quota", () => {
    const big = quotaVfs(disk, { bytes: 0, files: 0 }, { bytes: 4096 * 10_000_000 });
    expect([big.bfree, big.bavail]).toEqual([disk.bfree, disk.bavail]);
    const over = quotaVfs(disk, { bytes: 5000, files: 9 }, { bytes: 4096, files: 5 });
    expect([over.bfree, over.bavail, over.ffree, over.favail]).toEqual([0, 0, 0, 0]);
  });

  it('leaves the disk as it is without limits', () => {
    expect(quotaVfs(disk, { bytes: 1, files: 1 }, undefined)).toBe(disk);
  });
});
