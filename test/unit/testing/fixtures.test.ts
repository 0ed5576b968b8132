/**
 * Fixture trees (src/testing/fixtures.ts): keys are paths inside the root, checked by name before
 * anything is created; values are file contents (string or Buffer) or null (a directory).
 */
import { describe, it, expect } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkFixtures } from '../../../src/testing/fixtures.js';
import { liveRootCount } from '../../../src/testing/roots.js';
import { startTestServer, type TestServerOptions } from '../../../src/testing.js';

const failure = (files: unknown, where = 'files') => {
  try {
    checkFixtures(files, where);
  } catch (e) {
    return e as Error;
  }
  return undefined;
};

describe('keys', () => {
  it.each(['../x', '/../x', 'a/../../x', './../x', 'a/b/../../../x', '..'])('%j leaves the root: an error naming the key', (key) => {
    const err = failure({ 'ok.txt': 'fine', [key]: 'content' });
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toBe(`files[${JSON.stringify(key)}] leaves the root (fixture keys are paths inside it; ".." may not climb above "/")`);
  });

  it.each(['a/../x', '/x', 'a/./b/../c', 'deep/er/', './x'])('%j stays inside the root and is accepted', (key) => {
    expect(failure({ [key]: key.endsWith('/') ? null : 'x' })).toBeUndefined();
  });

  it('an empty key, a NUL byte, or a file that names the root itself are errors naming the key', () => {
    expect(failure({ '': 'x' })?.message).toBe('files[""] is empty');
    expect(failure({ 'a\0b': 'x' })?.message).toBe('files["a\\u0000b"] contains a NUL byte');
    expect(failure({ 'a/..': 'x' })?.message).toBe('files["a/.."] names the root itself, which is a directory, not a file');
    expect(failure({ 'a/..': null })).toBeUndefined();
  });

  it('errors say whose fixtures they are', () => {
    expect(failure({ '../x': 'x' }, 'users[1].files')?.message).toMatch(/^users\[1\]\.files\["\.\.\/x"\] leaves the root/);
  });
});

describe('values', () => {
  it.each([
    [42, 'number 42'],
    [true, 'boolean true'],
    [undefined, 'undefined'],
    [{ a: 1 }, 'an object (Object)'],
    [new Uint8Array([1]), 'a Uint8Array (wrap it: Buffer.from(…))'],
  ])('%o is a TypeError naming the key and the accepted types', (value, got) => {
    const err = failure({ 'n.txt': value });
    expect(err).toBeInstanceOf(TypeError);
    expect(err!.message).toBe(`files["n.txt"] must be a string, a Buffer, or null (a directory), got ${got}`);
  });

  it('a key ending in "/" is a directory: null or empty, never file content', () => {
    expect(failure({ 'd/': null, 'e/': '' })).toBeUndefined();
    const err = failure({ 'd/': 'text' });
    expect(err).toBeInstanceOf(TypeError);
    expect(err!.message).toBe('files["d/"] ends in "/", so it is a directory: its value must be null, not file content');
  });

  it('files itself must be an object', () => {
    expect(failure(['a.txt'])).toBeInstanceOf(TypeError);
    expect(failure(null)?.message).toMatch(/^files must be an object/);
  });
});

describe('through startTestServer', () => {
  it('a bad fixture fails the start, names the key, and leaves no temporary root behind', async () => {
    const before = liveRootCount();
    const cases: [TestServerOptions, RegExp][] = [
      [{ files: { 'ok.txt': 'x', '../x': 'escape' } }, /^files\["\.\.\/x"\] leaves the root/],
      [{ files: { 'n.txt': 42 as unknown as string } }, /^files\["n\.txt"\] must be a string, a Buffer, or null/],
      [{ users: [{ username: 'a' }, { username: 'b', files: { '/../x': 'x' } }] }, /^users\[1\]\.files\["\/\.\.\/x"\] leaves the root/],
    ];
    for (const [opts, message] of cases) await expect(startTestServer(opts)).rejects.toThrow(message);
    expect(liveRootCount()).toBe(before);
  });

  it('a key that climbs and comes back is written where it points; directories are made, null or "/"', async () => {
    await using s = await startTestServer({ files: { 'a/../b.txt': 'b', 'empty/': null, 'also-empty': null, 'deep/er/f.bin': Buffer.from([1, 2]) } });
    expect(await s.tree()).toEqual(['/also-empty/', '/b.txt', '/deep/', '/deep/er/', '/deep/er/f.bin', '/empty/']);
    expect([...(await s.readFile('/deep/er/f.bin'))]).toEqual([1, 2]);
  });

  it('fixtures in an existing root are written through the jail: a symlink there cannot carry them out', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'fixtures-outside-'));
    const root = await mkdtemp(join(tmpdir(), 'fixtures-root-'));
    try {
      // An absolute link to a host directory: in the jail it names the same path under the root.
      await symlink(outside, join(root, 'link'));
      await mkdir(join(root, outside), { recursive: true });
      await using s = await startTestServer({ root, files: { 'link/planted.txt': 'x' } });
      expect(await readdir(outside)).toEqual([]);
      expect(await readdir(join(root, outside))).toEqual(['planted.txt']);
      expect(String(await s.readFile('/link/planted.txt'))).toBe('x');
    } finally {
      await rm(outside, { recursive: true, force: true });
      await rm(root, { recursive: true, force: true });
    }
  });
});
