/**
 * What is on the target's disk: the harness's own view of each cell's effect (never the client's
 * word), and the state each op cell starts from, so that a cell fails only for its own reason and
 * not because the one before it did.
 */
import { createHash } from 'node:crypto';
import { lchown, lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { NON_UTF8_NAMES, P, type Fixtures, type OpCell } from './cells.js';
import type { Target } from './target.js';

/** Host path of a virtual path; a Buffer path stays bytes (names that are not UTF-8). */
export function hostPath(t: Target, vpath: string | Buffer): string | Buffer {
  return typeof vpath === 'string' ? join(t.root, vpath) : Buffer.concat([Buffer.from(t.root + '/'), vpath]);
}

const missing = (e: NodeJS.ErrnoException) => {
  if (e.code === 'ENOENT') return undefined;
  throw e;
};

export async function shaOnDisk(t: Target, vpath: string | Buffer): Promise<string | undefined> {
  const data = await readFile(hostPath(t, vpath)).catch(missing);
  return data && createHash('sha256').update(data).digest('hex');
}

export async function existsOnDisk(t: Target, vpath: string | Buffer): Promise<boolean> {
  return (await lstat(hostPath(t, vpath)).catch(missing)) !== undefined;
}

export async function modeOnDisk(t: Target, vpath: string): Promise<number | undefined> {
  const st = await lstat(hostPath(t, vpath)).catch(missing);
  return st && st.mode & 0o7777;
}

/** The stored target of a symlink, or a description of what is there instead. */
export async function symlinkOnDisk(t: Target, vpath: string): Promise<string> {
  const st = await lstat(hostPath(t, vpath)).catch(missing);
  if (!st) return '(nothing)';
  if (!st.isSymbolicLink()) return `(not a symlink: mode ${st.mode.toString(8)})`;
  return readlink(hostPath(t, vpath));
}

/** The names in a directory, as bytes. */
export async function namesOnDisk(t: Target, vdir: string): Promise<Buffer[]> {
  return readdir(hostPath(t, vdir), { encoding: 'buffer' });
}

async function own(t: Target, path: string | Buffer): Promise<void> {
  if (t.owner) await lchown(path, t.owner.uid, t.owner.gid);
}

async function ensureDir(t: Target, vpath: string): Promise<void> {
  const p = hostPath(t, vpath);
  await mkdir(p, { recursive: true });
  await own(t, p);
}

/** Writes a file into the root as the user would own it. */
export async function putOnDisk(t: Target, vpath: string | Buffer, data: Buffer): Promise<void> {
  await writeFile(hostPath(t, vpath), data);
  await own(t, hostPath(t, vpath));
}

async function ensureFile(t: Target, vpath: string, data: Buffer): Promise<void> {
  if (await existsOnDisk(t, vpath)) return;
  await ensureDir(t, P.dir);
  await putOnDisk(t, vpath, data);
}

export const removeFromDisk = (t: Target, vpath: string | Buffer) => rm(hostPath(t, vpath), { recursive: true, force: true });

/** Brings the disk to the state `cell` starts from, whatever the cells before it left. */
export async function prepare(t: Target, fx: Fixtures, cell: OpCell): Promise<void> {
  switch (cell) {
    case 'mkdir':
      return removeFromDisk(t, P.dir);
    case 'upload-5m':
      await ensureDir(t, P.dir);
      return removeFromDisk(t, P.up5m);
    case 'rename':
      await ensureFile(t, P.up5m, fx.up5m);
      return removeFromDisk(t, P.renamed);
    case 'stat':
    case 'chmod':
      await ensureFile(t, P.renamed, fx.up5m);
      return chmod(hostPath(t, P.renamed), 0o644);
    case 'symlink-readlink':
      await ensureFile(t, P.renamed, fx.up5m);
      return removeFromDisk(t, P.link);
    case 'remove':
      await ensureFile(t, P.renamed, fx.up5m);
      if (!(await existsOnDisk(t, P.link))) {
        await symlink(P.linkTarget, hostPath(t, P.link));
        await own(t, hostPath(t, P.link));
      }
      return;
    case 'rmdir':
      await removeFromDisk(t, P.dir);
      return ensureDir(t, P.dir);
    case 'non-utf8-name':
      for (const n of NON_UTF8_NAMES) await removeFromDisk(t, Buffer.concat([Buffer.from(P.base + '/'), n]));
      return;
    default:
      return;
  }
}

/** `/w/<name>` as a byte path. */
export const inBase = (name: Buffer): Buffer => Buffer.concat([Buffer.from(P.base + '/'), name]);
