/**
 * Atomic uploads: a new upload (an OPEN that creates or truncates) is written under a hidden name in
 * the same directory and renamed over its final name when the client closes it successfully; if the
 * session ends any other way the hidden file is removed, so the final name keeps its previous content
 * or stays absent. Hidden names start with STAGING_PREFIX: never listed, never reachable by a client
 * path, so no client name can collide with one. They carry the server instance's tag, so a restarted
 * server sweeps its own leftovers (src/server/sweep-staged.ts) and not another live instance's.
 * Opens that keep existing content (append, resume without truncation) write in place, as do opens
 * through a symlink (replacing the link with a file would change what the name is).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { posix } from 'node:path';
import { isRegular, type FileStat, type FileSystem, type OpenFlags } from '../fs/file-system.js';
import { SftpStatusError } from '../errors.js';

import { STAGING_PREFIX } from '../fs/staging-name.js';

export { STAGING_PREFIX };

/** This host's part of the tag: letters, digits and '-' only (the tag is split on '.'). */
export const HOST_TAG = hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 40) || 'host';

/**
 * One server start's tag: the starting process's pid and a random part (shared by its worker
 * processes through SFTP_CHROOT_START_TAG). The pid lets a sweep tell a live instance on this host
 * (another daemon sharing the roots) from a dead one.
 */
export function startTag(): string {
  return process.env['SFTP_CHROOT_START_TAG'] ?? (process.env['SFTP_CHROOT_START_TAG'] = `${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** The parts of a staging name, or undefined for any other name. `pid` is absent in hand-made tags. */
export function parseStagingName(name: string): { host: string; start: string; pid?: number } | undefined {
  if (!name.startsWith(STAGING_PREFIX)) return undefined;
  const [host, start] = name.slice(STAGING_PREFIX.length).split('.');
  if (!host || !start) return undefined;
  const pid = /^(\d+)-/.exec(start)?.[1];
  return pid !== undefined ? { host, start, pid: Number(pid) } : { host, start };
}

/** Client paths never name a staging file: it answers "No such file" as if it were not there. */
export function refuseStagingPath(path: string): void {
  if (path.includes(`/${STAGING_PREFIX}`) || path.startsWith(STAGING_PREFIX)) throw new SftpStatusError('NO_SUCH_FILE', undefined, 'a staging name');
}

export interface Staged {
  readonly temp: string;
  readonly final: string;
  /** EXCL was asked: the final name must still be free at the rename. */
  readonly noReplace: boolean;
}

/** Whether OPEN with `flags` on a name whose lstat is `existing` (null: absent) is a new upload to stage. */
export function stagesUpload(flags: OpenFlags, existing: FileStat | null): boolean {
  if (!flags.write || flags.append) return false;
  if (existing === null) return flags.creat;
  // A regular file being replaced; EXCL on an existing name fails the ordinary way.
  return flags.trunc && !flags.excl && isRegular(existing);
}

/** The lstat of `path`, or null when nothing is there. */
export async function lstatOrNull(fs: FileSystem, path: string): Promise<FileStat | null> {
  return fs.lstat(path).catch((e: unknown) => {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw e;
  });
}

export function stagingPath(final: string): string {
  return posix.join(posix.dirname(final), `${STAGING_PREFIX}${HOST_TAG}.${startTag()}.${randomBytes(6).toString('hex')}`);
}

/** Makes the upload visible under its final name (the client closed it successfully). */
export function publish(fs: FileSystem, s: Staged): Promise<void> {
  return fs.rename(s.temp, s.final, !s.noReplace);
}

/** Removes what an upload that did not finish left (never throws). */
export async function discard(fs: FileSystem, s: Staged): Promise<void> {
  await fs.remove(s.temp).catch(() => undefined);
}
