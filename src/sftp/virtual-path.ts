/** Client paths to absolute virtual paths, and the checks every path and offset meets first. */
import { SftpStatusError } from '../errors.js';
import { decodeName } from './names.js';
import { refuseStagingPath } from './staged-upload.js';

const MAX_PATH = 4096;

/** A path as ssh2 hands it over: the client's bytes (namesAsBuffers), or a string from a test's fake. */
export type Path = string | Buffer;

export function nameOf(p: Path): string {
  return typeof p === 'string' ? p : decodeName(p);
}

/** Absolute virtual path for a client path; relative paths start at `startDirectory`. */
export function resolvePath(raw: Path, startDirectory: string): string {
  const p = nameOf(raw);
  checkName(p, 'path');
  // An upload still being written under its hidden name is not there for clients.
  refuseStagingPath(p);
  if (p.startsWith('/')) return p;
  if (p === '' || p === '.') return startDirectory;
  return startDirectory === '/' ? '/' + p : `${startDirectory}/${p}`;
}

/** A path or symlink target the kernel could take: no NUL byte, at most PATH_MAX bytes. */
export function checkName(p: string, what: 'path' | 'symlink target'): void {
  if (p.includes('\0')) throw new SftpStatusError('BAD_MESSAGE', undefined, `NUL byte in ${what}`);
  if (Buffer.byteLength(p) > MAX_PATH) throw new SftpStatusError('BAD_MESSAGE', undefined, `${what} too long`);
}

/** ssh2 decodes uint64 offsets into doubles: anything past 2^53 is not the offset the client sent. */
export function checkOffset(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(offset + length)) {
    throw new SftpStatusError('BAD_MESSAGE', undefined, `offset ${offset} is beyond 2^53`);
  }
}
