import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, mkdir, writeFile, readdir, symlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLeftover, sweepRoot } from '../../../src/server/sweep-staged.js';
import { HOST_TAG, STAGING_PREFIX, startTag } from '../../../src/sftp/staged-upload.js';

const name = (host: string, start: string) => `${STAGING_PREFIX}${host}.${start}.0123456789ab`;
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('sweeping staging files at start', () => {
  it("removes this host's files of a start whose process is gone, and keeps the rest", () => {
    const alive = (pid: number) => pid === 4242;
    expect(isLeftover(name(HOST_TAG, '999999-aaaaaa'), 'current', alive), 'a dead process of this host').toBe(true);
    expect(isLeftover(name(HOST_TAG, 'no-pid-tag'), 'current', alive), 'a tag without a pid').toBe(true);
    expect(isLeftover(name(HOST_TAG, '4242-aaaaaa'), 'current', alive), 'another live daemon on this host').toBe(false);
    expect(isLeftover(name(HOST_TAG, startTag()), startTag(), () => false), 'this start').toBe(false);
    expect(isLeftover(name(`${HOST_TAG}-other`, '999999-aaaaaa'), 'current', alive), 'another host').toBe(false);
    expect(isLeftover('report.csv', 'current', alive)).toBe(false);
  });

  it('walks every directory, follows no symlink, and ends (. and .. are not descended)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sweep-unit-'));
    const outside = await mkdtemp(join(tmpdir(), 'sweep-outside-'));
    dirs.push(root, outside);
    const dead = name(HOST_TAG, 'dead-run');
    await mkdir(join(root, 'a/b'), { recursive: true });
    await writeFile(join(root, dead), '');
    await writeFile(join(root, 'a/b', dead), '');
    await writeFile(join(root, 'keep'), '');
    await writeFile(join(outside, dead), 'outside the root');
    await symlink(outside, join(root, 'link'));
    expect(await sweepRoot(root)).toBe(2);
    expect((await readdir(root)).sort()).toEqual(['a', 'keep', 'link']);
    expect(await readdir(join(root, 'a/b'))).toEqual([]);
    expect(await readdir(outside), 'a symlinked folder is not swept').toEqual([dead]);
  });
});
