/**
 * The harness's verdict on each op cell: what must be on the target's disk (or in the local
 * directory) after the client did it, plus the value the client reported where the cell is about
 * what the client sees (REALPATH, listing, STAT, READLINK). Shared by every client file.
 */
import { expect } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LOCAL, NON_UTF8_NAMES, P, UP5M_SIZE, escapeName, sha256 } from './cells.js';
import { existsOnDisk, inBase, modeOnDisk, namesOnDisk, shaOnDisk, symlinkOnDisk } from './disk.js';
import type { Matrix } from './matrix.js';

const localSha = (m: Matrix, name: string) => readFile(join(m.local, name)).then(sha256, () => '(no local file)');

export const check = {
  /** REALPATH of `/..` and of `..` (from `/`). */
  realpath(resolved: readonly string[]): void {
    expect(resolved).toEqual(['/', '/']);
  },

  list(names: readonly string[]): void {
    expect(names).toContain('hello.txt');
  },

  async mkdir(m: Matrix): Promise<void> {
    expect(await existsOnDisk(m.t, P.dir), `${P.dir} on disk`).toBe(true);
  },

  async upload5m(m: Matrix): Promise<void> {
    expect(await shaOnDisk(m.t, P.up5m), `sha256 of ${P.up5m} on disk`).toBe(sha256(m.fx.up5m));
  },

  async download(m: Matrix, size: '5m' | '20m', localName: string = size === '5m' ? LOCAL.dl5m : LOCAL.dl20m): Promise<void> {
    expect(await localSha(m, localName), `sha256 of the downloaded ${localName}`).toBe(sha256(size === '5m' ? m.fx.dl5m : m.fx.dl20m));
  },

  async rename(m: Matrix): Promise<void> {
    expect({ from: await existsOnDisk(m.t, P.up5m), to: await shaOnDisk(m.t, P.renamed) }).toEqual({ from: false, to: sha256(m.fx.up5m) });
  },

  stat(size: number | undefined): void {
    expect(size).toBe(UP5M_SIZE);
  },

  async chmod(m: Matrix): Promise<void> {
    expect((await modeOnDisk(m.t, P.renamed))?.toString(8), `mode of ${P.renamed} on disk`).toBe('640');
  },

  /**
   * The stored target must be exactly the relative `renamed.bin` the client sent (swapped arguments
   * create `renamed.bin` → `/w/m/link` instead). `readlink` is what the client read back, or null for
   * a client without READLINK.
   */
  async symlink(m: Matrix, readlink: string | null | undefined): Promise<void> {
    const onDisk = await symlinkOnDisk(m.t, P.link);
    if (readlink === null) expect(onDisk, `target of ${P.link} on disk`).toBe(P.linkTarget);
    else expect({ onDisk, readlink }).toEqual({ onDisk: P.linkTarget, readlink: P.linkTarget });
  },

  async remove(m: Matrix): Promise<void> {
    expect({ link: await existsOnDisk(m.t, P.link), file: await existsOnDisk(m.t, P.renamed) }).toEqual({ link: false, file: false });
  },

  async rmdir(m: Matrix): Promise<void> {
    expect(await existsOnDisk(m.t, P.dir), `${P.dir} on disk`).toBe(false);
  },

  /**
   * After the uploads: both byte names on disk with their contents, and the client's listing shows
   * them (`listed` null: the client cannot print such names, e.g. psftp filters them out).
   */
  async nonUtf8Uploaded(m: Matrix, listed: readonly string[] | null | undefined): Promise<void> {
    const onDisk = (await namesOnDisk(m.t, P.base)).map(escapeName);
    const contents = await Promise.all(NON_UTF8_NAMES.map((n) => shaOnDisk(m.t, inBase(n))));
    const wanted = NON_UTF8_NAMES.map(escapeName);
    const seen = { onDisk: wanted.filter((n) => onDisk.includes(n)), contents, listed: listed === null ? wanted : wanted.filter((n) => listed?.includes(n)) };
    expect(seen, `on disk: ${onDisk.join(', ')}; listed: ${listed?.join(', ')}`).toEqual({ onDisk: wanted, contents: m.fx.nonUtf8.map(sha256), listed: wanted });
  },

  /** After the download and removal: the first came back byte-identical, neither is left. */
  async nonUtf8Done(m: Matrix, localName: string = LOCAL.nonUtf8Back): Promise<void> {
    const left = await Promise.all(NON_UTF8_NAMES.map((n) => existsOnDisk(m.t, inBase(n))));
    expect({ back: await localSha(m, localName), left }).toEqual({ back: sha256(m.fx.nonUtf8[0]), left: [false, false] });
  },
};
