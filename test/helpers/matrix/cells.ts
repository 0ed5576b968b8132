/**
 * The client matrix's cells and fixtures: what every client is asked to do, on which paths, and the
 * sentence each cell's test is named by. The scripted drivers (drivers/*) use the same paths.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Each a separate connection that logs in and lists `/`. */
export const AUTH_CELLS = ['password', 'ed25519', 'rsa-sha2-256', 'rsa-sha2-512', 'ecdsa', 'wrongkey-then-password', 'keyboard-interactive'] as const;
/** In one password session, in this order, under the writable base directory `/w`. */
export const OP_CELLS = [
  'realpath-dotdot', 'list', 'mkdir', 'upload-5m', 'download-5m', 'download-20m', 'rename', 'stat', 'chmod',
  'symlink-readlink', 'remove', 'rmdir', 'non-utf8-name',
] as const;
/**
 * For clients that cannot be told which RSA signature algorithm to use, one RSA cell instead of
 * rsa-sha2-256 and rsa-sha2-512; the test notes the algorithm where the target can tell.
 */
export const RSA_ANY = 'rsa' as const;
export type AuthCell = (typeof AUTH_CELLS)[number] | typeof RSA_ANY;
export type OpCell = (typeof OP_CELLS)[number];
export type Cell = AuthCell | OpCell;

/** Virtual paths (the drivers hard-code the same ones). */
export const P = {
  base: '/w',
  hello: '/w/hello.txt',
  dl5m: '/w/dl5m.bin',
  dl20m: '/w/dl20m.bin',
  dl100m: '/w/dl100m.bin',
  dir: '/w/m',
  up5m: '/w/m/up5m.bin',
  renamed: '/w/m/renamed.bin',
  link: '/w/m/link',
  /** The symlink's target, stored verbatim (relative). */
  linkTarget: 'renamed.bin',
} as const;

export const HELLO = 'hello world\n';
export const UP5M_SIZE = 5_000_000;
export const MiB = 1024 * 1024;
/** File names in /w that are not UTF-8 (0xbf is a lone continuation byte, 0xfe never occurs in UTF-8). */
export const NON_UTF8_NAMES = [Buffer.from('up-\xbf.txt', 'latin1'), Buffer.from('up-\xfe.txt', 'latin1')] as const;

/** Local file names in the `--local` directory: sources for uploads, destinations for downloads. */
export const LOCAL = {
  up5m: 'up5m.bin',
  nonUtf8: ['nonutf8-1.bin', 'nonutf8-2.bin'],
  dl5m: 'dl5m.bin',
  dl20m: 'dl20m.bin',
  dl100m: 'dl100m.bin',
  nonUtf8Back: 'nonutf8-back.bin',
} as const;

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Names as the drivers print them: printable ASCII as is, every other byte (and `\`) as `\xNN`. */
export function escapeName(name: Buffer): string {
  let s = '';
  for (const b of name) s += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return s;
}

export interface Fixtures {
  /** Served from /w (dl5m is exactly 5,000,000 bytes, dl20m 20 MiB). */
  readonly dl5m: Buffer;
  readonly dl20m: Buffer;
  /** Uploaded by the clients to /w/m/up5m.bin. */
  readonly up5m: Buffer;
  /** Uploaded under NON_UTF8_NAMES; two different small files. */
  readonly nonUtf8: readonly [Buffer, Buffer];
}

export function makeFixtures(): Fixtures {
  return {
    dl5m: randomBytes(UP5M_SIZE),
    dl20m: randomBytes(20 * MiB),
    up5m: randomBytes(UP5M_SIZE),
    nonUtf8: [randomBytes(1000), randomBytes(1001)],
  };
}

const SENTENCES: Record<Cell, string> = {
  password: 'logs in with a password and lists /',
  ed25519: 'logs in with an ed25519 key and lists /',
  'rsa-sha2-256': 'logs in with an RSA key signing rsa-sha2-256 and lists /',
  'rsa-sha2-512': 'logs in with an RSA key signing rsa-sha2-512 and lists /',
  rsa: 'logs in with an RSA key (signature algorithm of its choice) and lists /',
  ecdsa: 'logs in with an ecdsa-sha2-nistp256 key and lists /',
  'wrongkey-then-password': 'offers an unknown key, then logs in with the password on the same connection',
  'keyboard-interactive': 'logs in with keyboard-interactive and lists /',
  'realpath-dotdot': 'resolves /.. and .. at / to /',
  list: 'lists /w',
  mkdir: 'creates the directory /w/m',
  'upload-5m': 'uploads 5 MB byte-identical',
  'download-5m': 'downloads 5 MB byte-identical',
  'download-20m': 'downloads 20 MiB byte-identical',
  rename: 'renames a file',
  stat: 'stats a 5 MB file and sees its size',
  chmod: 'sets mode 0640',
  'symlink-readlink': 'creates a symlink with the right target and reads it back',
  remove: 'removes a symlink and a file',
  rmdir: 'removes an empty directory',
  'non-utf8-name': 'uploads, lists, downloads and removes files whose names are not UTF-8',
};

/** The test name for a cell: `title('psftp', 'upload-5m')` → "psftp uploads 5 MB byte-identical". */
export const title = (client: string, cell: Cell): string => `${client} ${SENTENCES[cell]}`;
