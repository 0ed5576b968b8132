import { describe, it, expect } from 'vitest';
import { HOST_TAG, STAGING_PREFIX, parseStagingName, refuseStagingPath, stagesUpload, stagingPath, startTag } from '../../../src/sftp/staged-upload.js';
import type { FileStat, OpenFlags } from '../../../src/fs/file-system.js';

const flags = (o: Partial<OpenFlags>): OpenFlags => ({ read: false, write: true, append: false, creat: false, trunc: false, excl: false, ...o });
const file = { mode: 0o100644 } as FileStat;
const dir = { mode: 0o040755 } as FileStat;
const link = { mode: 0o120777 } as FileStat;

describe('staged uploads', () => {
  it('stages a new file and a truncated regular file, and nothing that keeps content', () => {
    expect(stagesUpload(flags({ creat: true, trunc: true }), null), 'put of a new file').toBe(true);
    expect(stagesUpload(flags({ creat: true, trunc: true }), file), 'put over an existing file').toBe(true);
    expect(stagesUpload(flags({ creat: true }), file), 'put -a / reput: resumes in place').toBe(false);
    expect(stagesUpload(flags({ append: true, creat: true }), null), 'append').toBe(false);
    expect(stagesUpload(flags({ creat: true, trunc: true, excl: true }), file), 'EXCL on an existing name fails the ordinary way').toBe(false);
    expect(stagesUpload(flags({ creat: true, trunc: true }), link), 'through a symlink: written in place').toBe(false);
    expect(stagesUpload(flags({ creat: true, trunc: true }), dir)).toBe(false);
    expect(stagesUpload(flags({ write: false, read: true }), null), 'a read').toBe(false);
    expect(stagesUpload(flags({}), null), 'WRITE without CREAT on a missing name fails the ordinary way').toBe(false);
  });

  it('a staging name sits beside its final name and carries this host, this start and its pid', () => {
    const p = stagingPath('/in/report.csv');
    expect(p.startsWith(`/in/${STAGING_PREFIX}`)).toBe(true);
    const tag = parseStagingName(p.slice('/in/'.length));
    expect(tag).toEqual({ host: HOST_TAG, start: startTag(), pid: process.pid });
    expect(stagingPath('/in/report.csv')).not.toBe(p);
  });

  it('names that are not staging names parse as undefined', () => {
    expect(parseStagingName('report.csv')).toBeUndefined();
    expect(parseStagingName(`${STAGING_PREFIX}`)).toBeUndefined();
    expect(parseStagingName(`${STAGING_PREFIX}host`)).toBeUndefined();
    expect(parseStagingName(`${STAGING_PREFIX}host.run.x`)).toEqual({ host: 'host', start: 'run' });
  });

  it('a client path naming a staging file anywhere answers NO_SUCH_FILE', () => {
    for (const p of [`/${STAGING_PREFIX}x`, `/a/${STAGING_PREFIX}x/b`, `${STAGING_PREFIX}x`]) expect(() => refuseStagingPath(p), p).toThrow(expect.objectContaining({ status: 'NO_SUCH_FILE' }));
    expect(() => refuseStagingPath('/a/.sftp-chroot-upload/x')).not.toThrow();
    expect(() => refuseStagingPath('/a/x.sftp-chroot-upload.y')).not.toThrow();
  });
});
