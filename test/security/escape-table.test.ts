/**
 * One table of named escape cases, replayed through every SFTP operation (in the style of Go's
 * os.Root tests, src/os/root_test.go).
 *
 * Each case is a fixture (a tiny language: "d/" is a directory, "f" a file, "a => t" a symlink
 * whose target string is t, verbatim) and a path, plus where chroot(2) semantics say the path
 * lands:
 *   follow   - for operations that follow a final symlink: a fresh name inside the root (the test
 *              creates it, or its parent, as the operation needs), an existing directory, or FAIL;
 *   nofollow - for operations that act on the final component itself: the same place, a symlink
 *              (the operation must act on the link, never on its target), a directory that can't be
 *              removed or replaced (the root, "..", "l/"), or FAIL.
 *
 * Layout on the host:   <tmp>/srv/alice            the user's root
 *                       <tmp>/srv/alice2/secret     another tenant, whose root shares alice's prefix
 *                       <tmp>/srv/alice-x/secret    a plain sibling with the same prefix
 *                       <tmp>/outside/{secret, dir/secret, <SECRET>.name}
 * plus real host paths (/, /etc/hostname, /tmp/<evil>, /proc/self/root, /dev/fd/0) as paths and
 * symlink targets. Cases that name real host objects run last and only if everything before them
 * passed (see SYSTEM below): a regression must not truncate /etc/hostname on the machine running
 * the tests.
 *
 * After every (case, operation): the server answered; the session still works; nothing outside
 * the root changed (inode, mode, size, times, including atime, which relatime bumps on the first
 * read of a file or listing of a directory whose atime is older than its ctime); no reply byte
 * contains the secret or the host path of <tmp>; an operation expected to fail changed nothing in
 * the root either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync,
  rmSync, statSync, symlinkSync, utimesSync, writeFileSync, type BigIntStats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { connect, OPEN, STATUS, SftpError, type SftpClient } from '../helpers/sftp-client.js';

// ---------------------------------------------------------------------------------------------
// Host layout (built at import time: the table needs the real paths)

const SECRET = `S3CR3T-${randomBytes(8).toString('hex')}`;
const EVIL = `sftp-escape-evil-${randomBytes(6).toString('hex')}`;
const TMP = realpathSync(mkdtempSync(join(tmpdir(), 'sftp-escape-')));
const SRV = join(TMP, 'srv');
const ROOT = join(SRV, 'alice');
const OUTSIDE = join(TMP, 'outside');
const rel = (host: string) => host.slice(1); // a host path read as a path inside the root

const OLD_ATIME = new Date('2000-01-01T00:00:00Z');
const OLD_MTIME = new Date('2001-01-01T00:00:00Z');
/** Times the setstat operations send (seconds). */
const T = 1_234_567_890;
/** Mode the setstat operations send: the set-uid bit must never reach the disk. */
const SETUID_MODE = 0o4640;
/** Target string the symlink operation stores. */
const SYMVAL = '../../../../outside/secret';

/** Sentinels outside the root, bottom-up (utimes on a child would change its parent's times). */
const SENTINEL_FILES = [
  join(OUTSIDE, 'secret'),
  join(OUTSIDE, 'dir', 'secret'),
  join(OUTSIDE, `${SECRET}.name`),
  join(SRV, 'alice2', 'secret'),
  join(SRV, 'alice-x', 'secret'),
];
const SENTINEL_DIRS = [join(OUTSIDE, 'dir'), OUTSIDE, join(SRV, 'alice2'), join(SRV, 'alice-x'), SRV, TMP];
/** Host paths we must not change (their atime is not ours to watch; /tmp changes all the time). */
const HOST_PATHS = ['/', '/etc', '/etc/hostname'];

function buildHost(): void {
  mkdirSync(ROOT, { recursive: true, mode: 0o755 });
  mkdirSync(join(OUTSIDE, 'dir'), { recursive: true });
  mkdirSync(join(SRV, 'alice2'), { recursive: true });
  mkdirSync(join(SRV, 'alice-x'), { recursive: true });
  for (const f of SENTINEL_FILES) writeFileSync(f, `${SECRET} in ${f}\n`, { mode: 0o644 });
  ageSentinels();
}

/** atime older than ctime: relatime then records the next read or listing of each sentinel. */
function ageSentinels(): void {
  for (const p of [...SENTINEL_FILES, ...SENTINEL_DIRS]) utimesSync(p, OLD_ATIME, OLD_MTIME);
}

type Snap = Record<string, string>;

function statLine(s: BigIntStats, withAtime: boolean): string {
  return [s.ino, s.mode.toString(8), s.nlink, s.size, s.mtimeNs, s.ctimeNs, withAtime ? s.atimeNs : '-'].join(' ');
}

/** Outside the root: stat only (no read, no readdir, so our own checks never bump an atime). */
function outsideSnapshot(): Snap {
  const out: Snap = {};
  for (const p of [...SENTINEL_FILES, ...SENTINEL_DIRS]) out[p] = statLine(lstatSync(p, { bigint: true }), true);
  for (const p of HOST_PATHS) out[p] = statLine(lstatSync(p, { bigint: true }), false);
  const t = lstatSync('/tmp');
  out['/tmp'] = `${t.ino} ${t.mode.toString(8)}`;
  for (const p of [`/tmp/${EVIL}`, `/${EVIL}`, `/${EVIL}-dir`, '/target', '/etc/target', '/etc/hostname/x']) out[`exists ${p}`] = String(existsSyncNoFollow(p));
  return out;
}

/** A full listing + contents outside the root: only at the very start and the very end. */
function outsideDeepSnapshot(): Snap {
  const out: Snap = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (p === ROOT) continue;
      const s = lstatSync(p);
      out[p] = `${s.mode.toString(8)} ${s.size}` + (s.isFile() ? ` ${readFileSync(p, 'utf8')}` : s.isSymbolicLink() ? ` -> ${readlinkSync(p)}` : '');
      if (s.isDirectory()) walk(p);
    }
  };
  walk(TMP);
  return out;
}

/** Everything in the root except atimes: an operation that fails must not change any of it. */
function rootSnapshot(): Snap {
  const out: Snap = {};
  const walk = (dir: string, v: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const s = lstatSync(p, { bigint: true });
      out[v + name] =
        statLine(s, false) + (s.isFile() ? ` ${readFileSync(p).toString('hex')}` : s.isSymbolicLink() ? ` -> ${readlinkSync(p)}` : '');
      if (s.isDirectory()) walk(p, `${v}${name}/`);
    }
  };
  const r = lstatSync(ROOT, { bigint: true });
  out['/'] = `${r.mode.toString(8)} ${r.mtimeNs}`;
  walk(ROOT, '/');
  return out;
}

// ---------------------------------------------------------------------------------------------
// The fixture language and host access inside the root

/** Host path of a canonical virtual path. Refuses to walk through a symlink (a bug in a case). */
function hp(v: string): string {
  const parts = v.split('/').filter(Boolean);
  let p = ROOT;
  for (const [i, part] of parts.entries()) {
    p = join(p, part);
    if (i < parts.length - 1 && existsSyncNoFollow(p) && lstatSync(p).isSymbolicLink())
      throw new Error(`test bug: ${v} goes through the symlink ${p}`);
  }
  return p;
}

function existsSyncNoFollow(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function resetRoot(): void {
  for (const e of readdirSync(ROOT)) rmSync(join(ROOT, e), { recursive: true, force: true });
  chmodSync(ROOT, 0o755);
}

function buildFixture(specs: readonly string[]): void {
  for (const spec of specs) {
    const arrow = spec.indexOf(' => ');
    if (arrow >= 0) {
      const p = hp(spec.slice(0, arrow));
      mkdirSync(dirname(p), { recursive: true });
      symlinkSync(spec.slice(arrow + 4), p);
    } else if (spec.endsWith('/')) {
      mkdirSync(hp(spec), { recursive: true });
    } else {
      const p = hp(spec);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, `fixture ${spec}\n`);
    }
  }
}

function linkTargetIn(specs: readonly string[], v: string): string {
  const spec = specs.find((s) => s.startsWith(`${v} => `));
  if (!spec) throw new Error(`test bug: no link ${v} in the fixture`);
  return spec.slice(v.length + 4);
}

function lst(v: string): ReturnType<typeof lstatSync> | undefined {
  const p = hp(v);
  return existsSyncNoFollow(p) ? lstatSync(p) : undefined;
}

function mkParents(v: string): void {
  mkdirSync(dirname(hp(v)), { recursive: true });
}

function putFile(v: string, content: string, mode = 0o640, mtime?: number): void {
  mkParents(v);
  writeFileSync(hp(v), content);
  chmodSync(hp(v), mode);
  if (mtime !== undefined) utimesSync(hp(v), mtime, mtime);
}

function putDir(v: string): void {
  mkdirSync(hp(v), { recursive: true });
}

function text(v: string): string {
  return readFileSync(hp(v), 'utf8');
}

const seconds = (ms: number) => Math.floor(ms / 1000);

// ---------------------------------------------------------------------------------------------
// The table

type Follow = { kind: 'name'; v: string } | { kind: 'dir'; v: string } | { kind: 'fail' };
type NoFollow = { kind: 'same' } | { kind: 'link'; v: string } | { kind: 'fixed' } | { kind: 'fail' };

interface Case {
  name: string;
  fs: string[];
  path: string;
  follow: Follow;
  nofollow?: NoFollow;
  /** Exact status every failing operation must return. */
  status?: number;
  /** Names real host objects: runs only if nothing failed before it (see SYSTEM). */
  system?: boolean;
}

const at = (v: string): Follow => ({ kind: 'name', v });
const dir = (v: string): Follow => ({ kind: 'dir', v });
const ROOTDIR: Follow = { kind: 'dir', v: '' };
const FAIL: Follow & NoFollow = { kind: 'fail' };
const link = (v: string): NoFollow => ({ kind: 'link', v });
const FIXED: NoFollow = { kind: 'fixed' };

const exponential = ['l0 => .', ...Array.from({ length: 10 }, (_, i) => `l${i + 1} => l${i}/l${i}`)];

/*
 * Two groups. SANDBOX cases, read with host semantics by a broken server (a lexical join or
 * path.resolve of root and path, then the host's own symlink walk), land on the sentinels in <tmp>
 * at worst: together they reach every sentinel through every operation, so they double as
 * canaries. SYSTEM cases name real host objects (/, /etc/hostname, /proc, /tmp, deep climbs to /):
 * a broken server would truncate, chmod, rename or create *those*. They run last, and only if
 * nothing before them failed: the table fails closed instead of damaging the machine it runs on.
 */
const SANDBOX: Case[] = [
  // Lexical: ".." never leaves the root.
  { name: '..', fs: [], path: '..', follow: ROOTDIR, nofollow: FIXED },
  { name: 'a/../../..', fs: ['a/'], path: 'a/../../..', follow: ROOTDIR, nofollow: FIXED },
  { name: '../', fs: [], path: '../', follow: ROOTDIR, nofollow: FIXED },
  { name: 'a/..//', fs: ['a/'], path: 'a/..//', follow: ROOTDIR, nofollow: FIXED },
  { name: '.', fs: ['f'], path: '.', follow: ROOTDIR, nofollow: FIXED },
  { name: 'the empty path', fs: ['f'], path: '', follow: ROOTDIR, nofollow: FIXED },
  { name: '../target', fs: [], path: '../target', follow: at('target') },
  { name: 'a/../../../target', fs: ['a/'], path: 'a/../../../target', follow: at('target') },
  { name: '../../outside/secret', fs: [], path: '../../outside/secret', follow: at('outside/secret') },
  { name: '../../outside (an existing directory of that name in the root)', fs: ['outside/', 'outside/x'], path: '../../outside', follow: dir('outside') },
  { name: '../d (an empty directory)', fs: ['d/'], path: '../d', follow: dir('d') },
  { name: '300 "." components', fs: [], path: './'.repeat(300) + 'target', follow: at('target') },
  { name: '300 missing components', fs: [], path: 'x/'.repeat(300) + 'target', follow: FAIL, nofollow: FAIL, status: STATUS.NO_SUCH_FILE },
  { name: 'a/./target', fs: ['a/'], path: 'a/./target', follow: at('a/target') },
  { name: 'missing/target (a directory that does not exist)', fs: [], path: 'missing/target', follow: FAIL, nofollow: FAIL, status: STATUS.NO_SUCH_FILE },
  { name: '... (a plain name)', fs: [], path: '...', follow: at('...') },
  { name: '..\\..\\etc (backslashes are plain characters)', fs: [], path: '..\\..\\etc', follow: at('..\\..\\etc') },
  { name: 'a\\..\\..\\x', fs: ['a/'], path: 'a\\..\\..\\x', follow: at('a\\..\\..\\x') },
  { name: '<tmp>/outside/secret (the host path of the secret)', fs: [], path: `${TMP}/outside/secret`, follow: at(`${rel(TMP)}/outside/secret`) },
  { name: '<tmp>/outside/dir (the host path of an outside directory)', fs: [], path: `${TMP}/outside/dir`, follow: at(`${rel(TMP)}/outside/dir`) },
  { name: '<root>/target (the host path of the root itself)', fs: [], path: `${ROOT}/target`, follow: at(`${rel(ROOT)}/target`) },

  // Sibling prefix: /srv/alice must not reach /srv/alice2 (another tenant) or /srv/alice-x.
  { name: '../alice2/secret', fs: [], path: '../alice2/secret', follow: at('alice2/secret') },
  { name: '../../srv/alice-x/secret', fs: [], path: '../../srv/alice-x/secret', follow: at('srv/alice-x/secret') },
  { name: '<srv>/alice2/secret', fs: [], path: `${SRV}/alice2/secret`, follow: at(`${rel(SRV)}/alice2/secret`) },

  // Names and paths at the limits.
  { name: 'a 255-byte name', fs: [], path: 'n'.repeat(255), follow: at('n'.repeat(255)) },
  { name: 'a 256-byte name', fs: [], path: 'n'.repeat(256), follow: FAIL, nofollow: FAIL, status: STATUS.BAD_MESSAGE },
  { name: 'a NUL byte (../../outside/secret\\0.txt)', fs: [], path: '../../outside/secret\0.txt', follow: FAIL, nofollow: FAIL, status: STATUS.BAD_MESSAGE },
  { name: 'a NUL byte (target\\0)', fs: ['target'], path: 'target\0', follow: FAIL, nofollow: FAIL, status: STATUS.BAD_MESSAGE },
  { name: 'f/x (a file used as a directory)', fs: ['f'], path: 'f/x', follow: FAIL, nofollow: FAIL, status: STATUS.NO_SUCH_FILE },

  // Symlinks to host paths of the sandbox: inside a chroot those are paths under the root.
  { name: 'l → <tmp>/outside/secret (a host path is a path inside the root)', fs: [`l => ${TMP}/outside/secret`], path: 'l', follow: at(`${rel(TMP)}/outside/secret`), nofollow: link('l') },
  { name: 'l → <tmp>/outside, then l/secret', fs: [`l => ${TMP}/outside`], path: 'l/secret', follow: at(`${rel(TMP)}/outside/secret`) },
  { name: 'l → <tmp>/outside/dir', fs: [`l => ${TMP}/outside/dir`], path: 'l', follow: at(`${rel(TMP)}/outside/dir`), nofollow: link('l') },
  { name: 'l → <srv>/alice2, then l/secret', fs: [`l => ${SRV}/alice2`], path: 'l/secret', follow: at(`${rel(SRV)}/alice2/secret`) },
  { name: 'l → <root>, then l/target', fs: [`l => ${ROOT}`], path: 'l/target', follow: at(`${rel(ROOT)}/target`) },

  // Relative symlinks that climb stop at the root.
  { name: 'l → ../../outside', fs: ['l => ../../outside'], path: 'l', follow: at('outside'), nofollow: link('l') },
  { name: 'l → ../../outside, then l/secret', fs: ['l => ../../outside'], path: 'l/secret', follow: at('outside/secret') },
  { name: 'd/l → ../../../outside, then d/l/secret', fs: ['d/', 'd/l => ../../../outside'], path: 'd/l/secret', follow: at('outside/secret') },
  { name: 'l → ../../outside (with <root>/outside/)', fs: ['outside/', 'l => ../../outside'], path: 'l', follow: dir('outside'), nofollow: link('l') },
  { name: 'l → ../alice2, then l/secret', fs: ['l => ../alice2'], path: 'l/secret', follow: at('alice2/secret') },
  { name: 'l → ../ (a link to the root)', fs: ['l => ../'], path: 'l', follow: ROOTDIR, nofollow: link('l') },
  { name: 'd/l → ../../ (a link to the root)', fs: ['d/', 'd/l => ../../'], path: 'd/l', follow: ROOTDIR, nofollow: link('d/l') },
  { name: 'a link ending in a dot (l → d/., then l/target)', fs: ['d/', 'l => d/.'], path: 'l/target', follow: at('d/target') },
  { name: 'd/d → .. (a link to the root)', fs: ['d/', 'd/d => ..'], path: 'd/d', follow: ROOTDIR, nofollow: link('d/d') },
  { name: 'd/d → .., then d/d/d/d/target', fs: ['d/', 'd/d => ..'], path: 'd/d/d/d/target', follow: at('target') },
  { name: 'd/d → .., then d/d/../../..', fs: ['d/', 'd/d => ..'], path: 'd/d/../../..', follow: ROOTDIR, nofollow: FIXED },

  // Chains, loops, and ".." around symlinks.
  { name: 'a symlink chain', fs: ['d/', 'l1 => l2', 'l2 => d/l3', 'd/l3 => ../target'], path: 'l1', follow: at('target'), nofollow: link('l1') },
  { name: 'a symlink chain that escapes', fs: ['d/e/', 'l1 => d/l2', 'd/l2 => e/../../../../l3', 'l3 => ../../outside/secret'], path: 'l1', follow: at('outside/secret'), nofollow: link('l1') },
  { name: 'a chain through directories', fs: ['a/', 'b/', 'a/l => ../b/l', 'b/l => ../../..'], path: 'a/l/outside/secret', follow: at('outside/secret') },
  { name: 'a loop a → a', fs: ['a => a'], path: 'a', follow: FAIL, nofollow: link('a') },
  { name: 'a loop a → b → a', fs: ['a => b', 'b => a'], path: 'a', follow: FAIL, nofollow: link('a') },
  { name: 'a loop a → a, then a/x', fs: ['a => a'], path: 'a/x', follow: FAIL, nofollow: FAIL, status: STATUS.NO_SUCH_FILE },
  { name: 'an exponential chain l10 → l9/l9 → …, then l10/target', fs: exponential, path: 'l10/target', follow: FAIL, nofollow: FAIL, status: STATUS.NO_SUCH_FILE },
  { name: '.. after a symlink (d → a/b/c, then d/../x)', fs: ['a/b/c/', 'd => a/b/c'], path: 'd/../x', follow: at('a/b/x') },
  { name: '.. before a symlink (b/../b/l/x, b/l → ../a)', fs: ['a/', 'b/', 'b/l => ../a'], path: 'b/../b/l/x', follow: at('a/x') },
  { name: 'a link ending in a slash (l → d/, then l/target)', fs: ['d/', 'l => d/'], path: 'l/target', follow: at('d/target') },
  { name: 'a trailing slash on a link to a file (l → f, then l/)', fs: ['f', 'l => f'], path: 'l/', follow: FAIL, nofollow: FAIL },
  { name: 'a trailing slash on a link to a directory (l → d, then l/)', fs: ['d/', 'l => d'], path: 'l/', follow: dir('d'), nofollow: FIXED },

  // Dangling symlinks: a create lands inside the root, or fails.
  { name: 'dangling l → ../../outside/new', fs: ['l => ../../outside/new'], path: 'l', follow: at('outside/new'), nofollow: link('l') },
  { name: 'dangling a/b/c/l → ../new, reached through d → a/b/c', fs: ['a/b/c/', 'd => a/b/c', 'a/b/c/l => ../new'], path: 'd/l', follow: at('a/b/new'), nofollow: link('a/b/c/l') },
];

const SYSTEM: Case[] = [
  // Absolute paths, and climbs past <tmp>.
  { name: '/', fs: ['f'], path: '/', follow: ROOTDIR, nofollow: FIXED },
  { name: '/..', fs: [], path: '/..', follow: ROOTDIR, nofollow: FIXED },
  { name: '/../..', fs: [], path: '/../..', follow: ROOTDIR, nofollow: FIXED },
  { name: '/../../target', fs: [], path: '/../../target', follow: at('target') },
  { name: '../../../../outside/secret', fs: [], path: '../../../../outside/secret', follow: at('outside/secret') },
  { name: '300 ".." components', fs: [], path: '../'.repeat(300) + 'target', follow: at('target') },
  { name: '//etc/hostname (with <root>/etc)', fs: ['etc/'], path: '//etc/hostname', follow: at('etc/hostname') },
  { name: '/etc/hostname (no <root>/etc)', fs: [], path: '/etc/hostname', follow: FAIL, nofollow: FAIL, status: STATUS.NO_SUCH_FILE },
  { name: '/../../alice-x/secret', fs: [], path: '/../../alice-x/secret', follow: at('alice-x/secret') },
  { name: 'a 4,095-byte path', fs: [], path: '/' + './'.repeat(2044) + 'target', follow: at('target') },
  { name: 'a 4,096-byte path', fs: [], path: '/' + './'.repeat(2044) + 'targetX', follow: FAIL, nofollow: FAIL, status: STATUS.BAD_MESSAGE },
  { name: 'a 4,097-byte path', fs: [], path: '../'.repeat(1365) + 'ab', follow: FAIL, nofollow: FAIL, status: STATUS.BAD_MESSAGE },

  // Absolute symlinks start at the root.
  { name: 'l → /etc (no <root>/etc)', fs: ['l => /etc'], path: 'l', follow: at('etc'), nofollow: link('l') },
  { name: 'l → /etc, then l/hostname (with <root>/etc)', fs: ['etc/', 'l => /etc'], path: 'l/hostname', follow: at('etc/hostname') },
  { name: 'l → /etc, then l/hostname (no <root>/etc)', fs: ['l => /etc'], path: 'l/hostname', follow: FAIL, nofollow: FAIL, status: STATUS.NO_SUCH_FILE },
  { name: 'l → /', fs: ['f', 'l => /'], path: 'l', follow: ROOTDIR, nofollow: link('l') },
  { name: 'l → /, then l/target', fs: ['l => /'], path: 'l/target', follow: at('target') },
  { name: 'l → /, then l/..', fs: ['l => /'], path: 'l/..', follow: ROOTDIR, nofollow: FIXED },
  { name: 'l → /..', fs: ['l => /..'], path: 'l', follow: ROOTDIR, nofollow: link('l') },
  { name: 'l → /proc/self/root, then l/etc/hostname', fs: ['l => /proc/self/root'], path: 'l/etc/hostname', follow: FAIL, nofollow: FAIL, status: STATUS.NO_SUCH_FILE },
  { name: 'l → /dev/fd/0', fs: ['l => /dev/fd/0'], path: 'l', follow: at('dev/fd/0'), nofollow: link('l') },
  { name: 'l → /proc/self/fd/3', fs: ['l => /proc/self/fd/3'], path: 'l', follow: at('proc/self/fd/3'), nofollow: link('l') },
  { name: 'l → ../../../../outside', fs: ['l => ../../../../outside'], path: 'l', follow: at('outside'), nofollow: link('l') },
  { name: 'd/l → ../../../../outside, then d/l/secret', fs: ['d/', 'd/l => ../../../../outside'], path: 'd/l/secret', follow: at('outside/secret') },
  { name: 'a symlink chain that escapes through an absolute link', fs: ['d/e/', 'l1 => d/l2', 'd/l2 => e/../../../../l3', 'l3 => /../../../outside/secret'], path: 'l1', follow: at('outside/secret'), nofollow: link('l1') },

  // Dangling symlinks to host paths (unique names: a broken server would create them on the host).
  { name: 'dangling l → /tmp/<evil>', fs: [`l => /tmp/${EVIL}`], path: 'l', follow: at(`tmp/${EVIL}`), nofollow: link('l') },
  { name: 'dangling l → ../../../../tmp/<evil>', fs: [`l => ../../../../tmp/${EVIL}`], path: 'l', follow: at(`tmp/${EVIL}`), nofollow: link('l') },
  { name: 'dangling chain l1 → l2 → /<evil>', fs: ['l1 => l2', `l2 => /${EVIL}`], path: 'l1', follow: at(EVIL), nofollow: link('l1') },
  { name: 'dangling l → /tmp/<evil> (no <root>/tmp)', fs: [`l => /tmp/${EVIL}`], path: 'l', follow: FAIL, nofollow: link('l') },
  { name: 'dangling l → /<evil>-dir/evil (no parent in the root)', fs: [`l => /${EVIL}-dir/evil`], path: 'l', follow: FAIL, nofollow: link('l') },
].map((k) => ({ ...k, system: true }));

const CASES: Case[] = [...SANDBOX, ...SYSTEM];

// ---------------------------------------------------------------------------------------------
// Operations

interface Ctx {
  c: SftpClient;
  k: Case;
  /** Content unique to this (case, operation). */
  content: string;
  mtime: number;
}

type OpFn = (x: Ctx) => Promise<void>;
interface Op {
  label: string;
  follows: boolean;
  run: OpFn;
}

const nofollowOf = (k: Case): NoFollow => k.nofollow ?? { kind: 'same' };

/** Awaits a request that must fail; asserts the status (exact if the case pins one) and that the root did not change. */
async function fails(k: Case, p: () => Promise<unknown>, exact?: number): Promise<SftpError> {
  const before = rootSnapshot();
  const err = await p().then(
    (v) => {
      throw new Error(`expected a failure, got success (${JSON.stringify(v)?.slice(0, 200)})`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SftpError);
  const code = (err as SftpError).code;
  expect(code, String(err)).toBeTypeOf('number');
  expect(code).not.toBe(STATUS.OK);
  const want = k.status ?? exact;
  if (want !== undefined) expect(code, String(err)).toBe(want);
  expect(rootSnapshot()).toEqual(before);
  return err as SftpError;
}

/** Existing directory a follow-result names (root = ''). */
const isDirFollow = (f: Follow): f is { kind: 'dir'; v: string } => f.kind === 'dir';

/** Host listing of a directory in the root as SFTP shows it. */
function hostNames(v: string): string[] {
  return ['.', '..', ...readdirSync(hp(v))].sort();
}

const vpath = (v: string) => '/' + v;

const OPS: Op[] = [
  {
    label: 'open-read',
    follows: true,
    async run({ c, k, content }) {
      const f = k.follow;
      if (f.kind === 'name') {
        putFile(f.v, content);
        expect((await c.readFile(k.path)).toString()).toBe(content);
      } else await fails(k, () => c.open(k.path, OPEN.READ));
    },
  },
  {
    label: 'open-create',
    follows: true,
    async run({ c, k, content }) {
      const f = k.follow;
      if (f.kind === 'name') {
        mkParents(f.v);
        expect(lst(f.v)).toBeUndefined();
        await c.writeFile(k.path, content);
        expect(text(f.v)).toBe(content);
        const l = nofollowOf(k);
        if (l.kind === 'link') expect(lst(l.v)?.isSymbolicLink()).toBe(true);
      } else await fails(k, () => c.open(k.path, OPEN.WRITE | OPEN.CREAT | OPEN.TRUNC));
    },
  },
  {
    label: 'open-trunc',
    follows: true,
    async run({ c, k, content }) {
      const f = k.follow;
      if (f.kind === 'name') {
        putFile(f.v, 'old content that is longer than the new one '.repeat(4));
        await c.writeFile(k.path, content, OPEN.WRITE | OPEN.TRUNC);
        expect(text(f.v)).toBe(content);
      } else await fails(k, () => c.open(k.path, OPEN.WRITE | OPEN.TRUNC));
    },
  },
  {
    label: 'open-excl',
    follows: true,
    async run({ c, k, content }) {
      const f = k.follow;
      const l = nofollowOf(k);
      if (l.kind === 'link') {
        // O_CREAT|O_EXCL never follows: the link exists, so EEXIST, whatever it points at.
        if (f.kind === 'name') putFile(f.v, 'old');
        await fails(k, () => c.open(k.path, OPEN.WRITE | OPEN.CREAT | OPEN.EXCL), STATUS.FAILURE);
      } else if (f.kind === 'name') {
        mkParents(f.v);
        await c.writeFile(k.path, content, OPEN.WRITE | OPEN.CREAT | OPEN.EXCL);
        expect(text(f.v)).toBe(content);
      } else await fails(k, () => c.open(k.path, OPEN.WRITE | OPEN.CREAT | OPEN.EXCL));
    },
  },
  {
    label: 'stat',
    follows: true,
    async run({ c, k, content, mtime }) {
      const f = k.follow;
      if (f.kind === 'name') {
        mkParents(f.v);
        await fails(k, () => c.stat(k.path), STATUS.NO_SUCH_FILE);
        putFile(f.v, content, 0o640, mtime);
        const st = await c.stat(k.path);
        expect(st.isFile()).toBe(true);
        expect([st.size, st.mode & 0o7777, st.mtime]).toEqual([Buffer.byteLength(content), 0o640, mtime]);
      } else if (isDirFollow(f)) {
        const st = await c.stat(k.path);
        const h = statSync(hp(f.v));
        expect(st.isDirectory()).toBe(true);
        expect([st.mode, st.mtime]).toEqual([h.mode, seconds(h.mtimeMs)]);
      } else await fails(k, () => c.stat(k.path));
    },
  },
  {
    label: 'lstat',
    follows: false,
    async run({ c, k, content, mtime }) {
      const f = k.follow;
      const l = nofollowOf(k);
      if (l.kind === 'link') {
        if (f.kind === 'name') putFile(f.v, content, 0o640, mtime);
        const st = await c.lstat(k.path);
        expect(st.isSymbolicLink()).toBe(true);
        expect(st.size).toBe(Buffer.byteLength(linkTargetIn(k.fs, l.v)));
      } else if (l.kind === 'same' && f.kind === 'name') {
        putFile(f.v, content, 0o640, mtime);
        const st = await c.lstat(k.path);
        expect(st.isFile()).toBe(true);
        expect([st.size, st.mtime]).toEqual([Buffer.byteLength(content), mtime]);
      } else if ((l.kind === 'same' || l.kind === 'fixed') && isDirFollow(f)) {
        const st = await c.lstat(k.path);
        const h = statSync(hp(f.v));
        expect(st.isDirectory()).toBe(true);
        expect([st.mode, st.mtime]).toEqual([h.mode, seconds(h.mtimeMs)]);
      } else await fails(k, () => c.lstat(k.path));
    },
  },
  {
    label: 'setstat (mode 04640, times, size)',
    follows: true,
    async run({ c, k }) {
      const f = k.follow;
      if (f.kind === 'name') {
        putFile(f.v, '0123456789', 0o600);
        await c.setstat(k.path, { mode: SETUID_MODE, atime: T, mtime: T, size: 3 });
        const h = statSync(hp(f.v));
        expect([h.mode & 0o7777, h.size, seconds(h.mtimeMs), seconds(h.atimeMs)]).toEqual([0o640, 3, T, T]);
        const l = nofollowOf(k);
        if (l.kind === 'link') expect(lst(l.v)?.isSymbolicLink()).toBe(true);
      } else if (isDirFollow(f)) {
        // 0700 → 04755 expects 0755: the mode every real directory (and the host's /) has anyway.
        chmodSync(hp(f.v), 0o700);
        await c.setstat(k.path, { mode: 0o4755, atime: T, mtime: T });
        const h = statSync(hp(f.v));
        expect([h.mode & 0o7777, seconds(h.mtimeMs)]).toEqual([0o755, T]);
      } else await fails(k, () => c.setstat(k.path, { mode: SETUID_MODE, atime: T, mtime: T, size: 3 }));
    },
  },
  {
    label: 'lsetstat (times)',
    follows: false,
    async run({ c, k, content, mtime }) {
      const f = k.follow;
      const l = nofollowOf(k);
      if (l.kind === 'link') {
        if (f.kind === 'name') putFile(f.v, content, 0o640, mtime);
        await c.lsetstat(k.path, { atime: T, mtime: T });
        expect(seconds(lstatSync(hp(l.v)).mtimeMs)).toBe(T);
        if (f.kind === 'name') expect(seconds(statSync(hp(f.v)).mtimeMs)).toBe(mtime);
        if (isDirFollow(f)) expect(seconds(statSync(hp(f.v)).mtimeMs)).not.toBe(T);
      } else if (l.kind === 'same' && f.kind === 'name') {
        putFile(f.v, content, 0o640, mtime);
        await c.lsetstat(k.path, { atime: T, mtime: T });
        expect(seconds(statSync(hp(f.v)).mtimeMs)).toBe(T);
      } else if ((l.kind === 'same' || l.kind === 'fixed') && isDirFollow(f)) {
        await c.lsetstat(k.path, { atime: T, mtime: T });
        expect(seconds(statSync(hp(f.v)).mtimeMs)).toBe(T);
      } else await fails(k, () => c.lsetstat(k.path, { atime: T, mtime: T }));
    },
  },
  {
    label: 'opendir/readdir',
    follows: true,
    async run({ c, k }) {
      const f = k.follow;
      if (f.kind === 'name') {
        putDir(f.v);
        putFile(`${f.v}/marker`, 'm');
        expect((await c.list(k.path)).map((e) => e.filename).sort()).toEqual(['.', '..', 'marker']);
      } else if (isDirFollow(f)) {
        const entries = await c.list(k.path);
        expect(entries.map((e) => e.filename).sort()).toEqual(hostNames(f.v));
        if (f.v === '') {
          // The root's ".." is the root, not the host directory above it.
          const dot = entries.find((e) => e.filename === '.')!;
          const dotdot = entries.find((e) => e.filename === '..')!;
          expect(dotdot.attrs).toEqual(dot.attrs);
        }
      } else await fails(k, () => c.opendir(k.path));
    },
  },
  {
    label: 'statvfs',
    follows: true,
    async run({ c, k, content }) {
      const f = k.follow;
      if (f.kind === 'name') {
        putFile(f.v, content);
        expect(await c.statvfs(k.path)).toHaveProperty('f_bsize');
      } else if (isDirFollow(f)) expect(await c.statvfs(k.path)).toHaveProperty('f_bsize');
      else await fails(k, () => c.statvfs(k.path));
    },
  },
  {
    label: 'realpath',
    follows: true,
    async run({ c, k, content }) {
      const f = k.follow;
      if (f.kind === 'name') {
        mkParents(f.v);
        expect(await c.realpath(k.path)).toBe(vpath(f.v)); // a missing last component is allowed
        putFile(f.v, content);
        expect(await c.realpath(k.path)).toBe(vpath(f.v));
      } else if (isDirFollow(f)) expect(await c.realpath(k.path)).toBe(vpath(f.v));
      else await fails(k, () => c.realpath(k.path));
    },
  },
  {
    label: 'expand-path',
    follows: true,
    async run({ c, k, content }) {
      const f = k.follow;
      if (f.kind === 'name') {
        putFile(f.v, content);
        expect(await c.expandPath(k.path)).toBe(vpath(f.v));
      } else if (isDirFollow(f)) expect(await c.expandPath(k.path)).toBe(vpath(f.v));
      else await fails(k, () => c.expandPath(k.path));
    },
  },
  {
    label: 'mkdir',
    follows: false,
    async run({ c, k, content }) {
      const f = k.follow;
      const l = nofollowOf(k);
      if (l.kind === 'link') {
        if (f.kind === 'name') putFile(f.v, content);
        await fails(k, () => c.mkdir(k.path));
      } else if (l.kind === 'same' && f.kind === 'name') {
        mkParents(f.v);
        await c.mkdir(k.path);
        expect(lst(f.v)?.isDirectory()).toBe(true);
      } else await fails(k, () => c.mkdir(k.path));
    },
  },
  {
    label: 'rmdir',
    follows: false,
    async run({ c, k }) {
      const f = k.follow;
      const l = nofollowOf(k);
      if (l.kind === 'link') {
        if (f.kind === 'name') putDir(f.v);
        await fails(k, () => c.rmdir(k.path));
      } else if (l.kind === 'same' && f.kind === 'name') {
        putDir(f.v);
        await c.rmdir(k.path);
        expect(lst(f.v)).toBeUndefined();
      } else if (l.kind === 'same' && isDirFollow(f) && f.v !== '' && readdirSync(hp(f.v)).length === 0) {
        await c.rmdir(k.path);
        expect(lst(f.v)).toBeUndefined();
      } else await fails(k, () => c.rmdir(k.path));
    },
  },
  {
    label: 'remove',
    follows: false,
    async run({ c, k, content }) {
      const f = k.follow;
      const l = nofollowOf(k);
      if (l.kind === 'link') {
        if (f.kind === 'name') putFile(f.v, content);
        await c.remove(k.path);
        expect(lst(l.v)).toBeUndefined();
        if (f.kind === 'name') expect(text(f.v)).toBe(content);
        if (isDirFollow(f)) expect(lst(f.v)?.isDirectory()).toBe(true);
      } else if (l.kind === 'same' && f.kind === 'name') {
        putFile(f.v, content);
        await c.remove(k.path);
        expect(lst(f.v)).toBeUndefined();
      } else await fails(k, () => c.remove(k.path));
    },
  },
  ...(['rename', 'posix-rename'] as const).map(
    (kind): Op => ({
      label: `${kind} (as source)`,
      follows: false,
      async run({ c, k, content }) {
        const f = k.follow;
        const l = nofollowOf(k);
        const mv = (from: string, to: string) => (kind === 'rename' ? c.rename(from, to) : c.posixRename(from, to));
        if (l.kind === 'link') {
          if (f.kind === 'name') putFile(f.v, content);
          await mv(k.path, '/moved-x');
          expect(readlinkSync(hp('moved-x'))).toBe(linkTargetIn(k.fs, l.v));
          expect(lst(l.v)).toBeUndefined();
          if (f.kind === 'name') expect(text(f.v)).toBe(content);
        } else if (l.kind === 'same' && f.kind === 'name') {
          putFile(f.v, content);
          await mv(k.path, '/moved-x');
          expect(text('moved-x')).toBe(content);
          expect(lst(f.v)).toBeUndefined();
        } else if (l.kind === 'same' && isDirFollow(f) && f.v !== '') {
          await mv(k.path, '/moved-x');
          expect(lst('moved-x')?.isDirectory()).toBe(true);
          expect(lst(f.v)).toBeUndefined();
        } else await fails(k, () => mv(k.path, '/moved-x'));
      },
    }),
  ),
  ...(['rename', 'posix-rename'] as const).map(
    (kind): Op => ({
      label: `${kind} (as destination)`,
      follows: false,
      async run({ c, k, content }) {
        const f = k.follow;
        const l = nofollowOf(k);
        const mv = (from: string, to: string) => (kind === 'rename' ? c.rename(from, to) : c.posixRename(from, to));
        putFile('src-x', content);
        if (l.kind === 'link') {
          if (f.kind === 'name') putFile(f.v, 'old');
          if (kind === 'rename') {
            await fails(k, () => mv('/src-x', k.path), STATUS.FAILURE); // RENAME_NOREPLACE: EEXIST
          } else {
            // posix-rename replaces the link itself, never what it points at.
            await mv('/src-x', k.path);
            expect(lst(l.v)?.isFile()).toBe(true);
            expect(text(l.v)).toBe(content);
            if (f.kind === 'name') expect(text(f.v)).toBe('old');
            if (isDirFollow(f)) expect(lst(f.v)?.isDirectory()).toBe(true);
          }
        } else if (l.kind === 'same' && f.kind === 'name') {
          mkParents(f.v);
          await mv('/src-x', k.path);
          expect(text(f.v)).toBe(content);
          expect(lst('src-x')).toBeUndefined();
        } else await fails(k, () => mv('/src-x', k.path));
      },
    }),
  ),
  {
    label: 'hardlink (as source)',
    follows: false,
    async run({ c, k, content }) {
      const f = k.follow;
      const l = nofollowOf(k);
      if (l.kind === 'link') {
        // flags 0: the new name is a second link to the symlink itself.
        if (f.kind === 'name') putFile(f.v, content);
        await c.hardlink(k.path, '/hl-x');
        expect(lst('hl-x')?.isSymbolicLink()).toBe(true);
        expect(lst('hl-x')?.ino).toBe(lst(l.v)?.ino);
      } else if (l.kind === 'same' && f.kind === 'name') {
        putFile(f.v, content);
        await c.hardlink(k.path, '/hl-x');
        expect(lst('hl-x')?.ino).toBe(lst(f.v)?.ino);
      } else await fails(k, () => c.hardlink(k.path, '/hl-x'));
    },
  },
  {
    label: 'hardlink (as destination)',
    follows: false,
    async run({ c, k, content }) {
      const f = k.follow;
      const l = nofollowOf(k);
      putFile('src-x', content);
      if (l.kind === 'same' && f.kind === 'name') {
        mkParents(f.v);
        await c.hardlink('/src-x', k.path);
        expect(lst(f.v)?.ino).toBe(lst('src-x')?.ino);
      } else await fails(k, () => c.hardlink('/src-x', k.path));
    },
  },
  {
    label: 'symlink (creating a link at the path)',
    follows: false,
    async run({ c, k }) {
      const f = k.follow;
      const l = nofollowOf(k);
      if (l.kind === 'same' && f.kind === 'name') {
        mkParents(f.v);
        await c.symlink(SYMVAL, k.path);
        expect(readlinkSync(hp(f.v))).toBe(SYMVAL);
      } else await fails(k, () => c.symlink(SYMVAL, k.path));
    },
  },
  {
    label: 'readlink',
    follows: false,
    async run({ c, k, content }) {
      const f = k.follow;
      const l = nofollowOf(k);
      if (l.kind === 'link') {
        if (f.kind === 'name') putFile(f.v, content);
        expect(await c.readlink(k.path)).toBe(linkTargetIn(k.fs, l.v));
      } else {
        if (f.kind === 'name') putFile(f.v, content);
        await fails(k, () => c.readlink(k.path));
      }
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Running the table

/** Strings no reply may contain, once a case's own legitimate strings are removed. */
function scanInbound(c: SftpClient, k: Case): void {
  let seen = c.inbound().toString('latin1');
  const allowed = k.fs.filter((s) => s.includes(' => ')).map((s) => s.slice(s.indexOf(' => ') + 4));
  if (k.follow.kind !== 'fail') allowed.push(vpath(k.follow.v));
  for (const a of allowed.sort((x, y) => y.length - x.length)) seen = seen.split(Buffer.from(a).toString('latin1')).join('');
  expect(seen.includes(SECRET), 'a reply contained the outside secret').toBe(false);
  expect(seen.includes(TMP), 'a reply contained the host path of the temporary directory').toBe(false);
}

/** A virtual path for a test name: no run-specific host paths, no 255-byte names. */
function display(v: string): string {
  return ('/' + v)
    .replace(rel(ROOT), '<root>')
    .replace(rel(SRV), '<srv>')
    .replace(rel(TMP), '<tmp>')
    .replace(EVIL, '<evil>')
    .replace(/n{255}/, '<255 × n>');
}

function outcome(k: Case, op: Op): string {
  const f = k.follow;
  const l = nofollowOf(k);
  const st = k.status !== undefined ? ` with ${Object.keys(STATUS).find((n) => STATUS[n as keyof typeof STATUS] === k.status)}` : '';
  if (!op.follows && l.kind === 'link') return `acts on the link ${display(l.v)} itself`;
  if (!op.follows && l.kind === 'fixed') return 'names a directory that cannot be replaced';
  if (f.kind === 'name' && (op.follows || l.kind === 'same')) return `resolves to ${display(f.v)} inside the root`;
  if (f.kind === 'dir' && (op.follows || l.kind === 'same')) return `resolves to the directory ${display(f.v)} inside the root`;
  return `fails${st}`;
}

let server: TestServer;
let client: SftpClient;
let initialOutside: Snap;
let initialDeep: Snap;
let n = 0;

beforeAll(async () => {
  buildHost();
  initialDeep = outsideDeepSnapshot(); // reads and lists: age the sentinels again afterwards
  ageSentinels();
  initialOutside = outsideSnapshot();
  // alice2 is a real tenant: its root is the sibling sharing alice's name as a prefix.
  server = await startTestServer({ users: [{ username: 'alice', root: ROOT }, { username: 'alice2', root: join(SRV, 'alice2') }] });
  client = await connect(server);
});

afterAll(async () => {
  await client?.end();
  await server?.close();
  rmSync(TMP, { recursive: true, force: true });
});

/** Failures so far in this file: SYSTEM cases refuse to run after one. */
let failures = 0;

/** Replays one (case, operation) and the checks every pair shares. */
async function replay(k: Case, op: Op): Promise<void> {
  if (k.system && failures > 0)
    throw new Error(`not run: ${failures} earlier test(s) failed, and a server that fails them could damage the host paths this case names`);
  try {
    await replayChecked(k, op);
  } catch (e) {
    failures++;
    throw e;
  }
}

async function replayChecked(k: Case, op: Op): Promise<void> {
  resetRoot();
  buildFixture(k.fs);
  client.inbound();
  const i = ++n;
  try {
    await op.run({ c: client, k, content: `content #${i} of ${k.name} / ${op.label}`, mtime: 1_000_000_000 + i });
  } finally {
    expect(await client.realpath('.'), 'the session still works').toBe('/');
    scanInbound(client, k);
    expect(outsideSnapshot(), 'nothing outside the root changed or was read').toEqual(initialOutside);
  }
}

describe('the escape table', () => {
  it('ssh2 sends SYMLINK in spec order to this server: the link lands at the path, the target verbatim', async () => {
    failures++; // until the end of this test: the table's checks depend on it
    resetRoot();
    await client.symlink('../../outside/secret', '/sanity-link');
    expect(readlinkSync(hp('sanity-link'))).toBe('../../outside/secret');
    expect(await client.readlink('/sanity-link')).toBe('../../outside/secret');
    expect(lst('sanity-link')?.isSymbolicLink()).toBe(true);
    // The reply tap sees what the server sends (scanInbound relies on it).
    putFile('tap', `tap ${SECRET.slice(0, 6)}-marker`);
    client.inbound();
    await client.readFile('/tap');
    expect(client.inbound().toString('latin1')).toContain(`tap ${SECRET.slice(0, 6)}-marker`);
    failures--;
  });

  for (const k of CASES) {
    describe(`"${k.name}"`, () => {
      for (const op of OPS) it(`${outcome(k, op)} for ${op.label}`, () => replay(k, op));
    });
  }
});

describe('attributes and names', () => {
  it('setstat with mode 04777 leaves 0777 on disk, for setstat and fsetstat', async () => {
    resetRoot();
    buildFixture(['f', 'g']);
    await client.setstat('/f', { mode: 0o4777 });
    expect(statSync(hp('f')).mode & 0o7777).toBe(0o777);
    const h = await client.open('/g', OPEN.WRITE);
    try {
      await client.fsetstat(h, { mode: 0o6777 });
    } finally {
      await client.close(h);
    }
    expect(statSync(hp('g')).mode & 0o7777).toBe(0o777);
    await client.mkdir('/d', { mode: 0o3777 });
    expect(lst('d')?.isDirectory()).toBe(true);
    expect(statSync(hp('d')).mode & 0o7000).toBe(0);
  });

  it('setstat with a uid or gid is refused and changes nothing, also through a link pointing outside', async () => {
    resetRoot();
    buildFixture(['f', `l => ${TMP}/outside/secret`, `${rel(TMP)}/outside/secret`]);
    for (const [p, attrs] of [
      ['/f', { uid: 12345, gid: 12345 }],
      ['/f', { uid: 12345, gid: process.getgid!(), mode: 0o600 }],
      ['/l', { uid: process.getuid!(), gid: 54321, mode: 0o600 }],
      ['/../../outside/secret', { uid: 1, gid: 1 }],
    ] as const) {
      await fails({ name: 'chown', fs: [], path: p, follow: FAIL }, () => client.setstat(p, attrs), STATUS.PERMISSION_DENIED);
      await fails({ name: 'chown', fs: [], path: p, follow: FAIL }, () => client.lsetstat(p, attrs), STATUS.PERMISSION_DENIED);
    }
    expect(outsideSnapshot()).toEqual(initialOutside);
  });

  it('rename of / itself fails and leaves the root in place', async () => {
    resetRoot();
    buildFixture(['d/', 'f']);
    for (const from of ['/', '.', '..', '/..', '']) {
      await fails({ name: 'rename /', fs: [], path: from, follow: FAIL }, () => client.rename(from, '/d/moved'));
      await fails({ name: 'rename /', fs: [], path: from, follow: FAIL }, () => client.posixRename(from, '/d/moved'));
      await fails({ name: 'rename onto /', fs: [], path: from, follow: FAIL }, () => client.posixRename('/f', from));
    }
    expect(outsideSnapshot()).toEqual(initialOutside);
  });

  it('rename of a directory into its own subdirectory fails', async () => {
    resetRoot();
    buildFixture(['d/sub/', 'd/f']);
    const k: Case = { name: 'own subdir', fs: [], path: '/d', follow: FAIL };
    await fails(k, () => client.rename('/d', '/d/sub/d'));
    await fails(k, () => client.posixRename('/d', '/d/sub/d'));
    await fails(k, () => client.rename('/d', '/d/sub/../../d/sub/x'));
  });

  it('RENAME onto an existing file fails, posix-rename replaces it', async () => {
    resetRoot();
    buildFixture(['a', 'b']);
    await fails({ name: 'noreplace', fs: [], path: '/b', follow: FAIL }, () => client.rename('/a', '/b'), STATUS.FAILURE);
    await client.posixRename('/a', '/b');
    expect(text('b')).toBe('fixture a\n');
    expect(lst('a')).toBeUndefined();
  });

  it('posix-rename onto a symlink that points outside replaces the link, not its target', async () => {
    resetRoot();
    buildFixture(['new', `l => ${TMP}/outside/secret`, `${rel(TMP)}/outside/secret`]);
    await client.posixRename('/new', '/l');
    expect(lst('l')?.isFile()).toBe(true);
    expect(text('l')).toBe('fixture new\n');
    expect(text(`${rel(TMP)}/outside/secret`)).toBe(`fixture ${rel(TMP)}/outside/secret\n`);
    expect(outsideSnapshot()).toEqual(initialOutside);
  });

  it('hardlink of a directory is refused', async () => {
    resetRoot();
    buildFixture(['d/']);
    await fails({ name: 'link dir', fs: [], path: '/d', follow: FAIL }, () => client.hardlink('/d', '/d2'));
  });

  it('expand-path confines ~, ~alice, ~/../.. to the root and refuses another user\'s home', async () => {
    resetRoot();
    expect(await client.expandPath('~')).toBe('/');
    expect(await client.expandPath('~/../..')).toBe('/');
    expect(await client.expandPath('~alice')).toBe('/');
    expect(await client.expandPath('~alice/../../alice2')).toBe('/alice2');
    await fails({ name: '~root', fs: [], path: '~root', follow: FAIL }, () => client.expandPath('~root'), STATUS.NO_SUCH_FILE);
    await fails({ name: '~alice2', fs: [], path: '~alice2', follow: FAIL }, () => client.expandPath('~alice2/secret'), STATUS.NO_SUCH_FILE);
    scanInbound(client, { name: 'expand', fs: [], path: '', follow: FAIL });
  });

  it('home-directory of another tenant reveals nothing', async () => {
    resetRoot();
    const home = (who: string) => client.homeDirectory(who);
    expect(await home('')).toBe('/');
    expect(await home('alice')).toBe('/');
    await expect(home('alice2')).rejects.toMatchObject({ code: STATUS.FAILURE });
    await expect(home('root')).rejects.toMatchObject({ code: STATUS.FAILURE });
    scanInbound(client, { name: 'home', fs: [], path: '', follow: FAIL });
  });

  it('READDIR reports a link to an outside file with the link\'s own attributes', async () => {
    resetRoot();
    buildFixture([`l => ${TMP}/outside/secret`, 'd/', `d/m => ../../../../outside/dir`]);
    const root = await client.list('/');
    const l = root.find((e) => e.filename === 'l')!;
    expect(l.longname.startsWith('l')).toBe(true);
    expect(l.attrs.size).toBe(Buffer.byteLength(`${TMP}/outside/secret`));
    const d = await client.list('/d');
    expect(d.find((e) => e.filename === 'm')?.attrs.size).toBe('../../../../outside/dir'.length);
    scanInbound(client, { name: 'readdir', fs: [`l => ${TMP}/outside/secret`], path: '', follow: FAIL });
    expect(outsideSnapshot()).toEqual(initialOutside);
  });

  it('a FIFO in the root, or a link to one, is refused without blocking the session', async () => {
    resetRoot();
    buildFixture(['lf => fifo', 'f']);
    execFileSync('mkfifo', [hp('fifo')]);
    const started = Date.now();
    const slow = Promise.all([
      fails({ name: 'fifo', fs: [], path: '/fifo', follow: FAIL }, () => client.open('/fifo', OPEN.READ), STATUS.PERMISSION_DENIED),
      fails({ name: 'fifo', fs: [], path: '/lf', follow: FAIL }, () => client.open('/lf', OPEN.WRITE | OPEN.TRUNC), STATUS.PERMISSION_DENIED),
      fails({ name: 'fifo', fs: [], path: '/lf', follow: FAIL }, () => client.open('/lf', OPEN.WRITE | OPEN.CREAT)),
      fails({ name: 'fifo', fs: [], path: '/fifo', follow: FAIL }, () => client.setstat('/fifo', { size: 0 })),
      fails({ name: 'fifo', fs: [], path: '/fifo', follow: FAIL }, () => client.opendir('/lf')),
    ]);
    expect((await client.stat('/lf')).isFIFO()).toBe(true);
    expect((await client.readFile('/f')).toString()).toBe('fixture f\n');
    await slow;
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('after the whole table, nothing outside the root was listed, read or changed', () => {
    expect(outsideSnapshot()).toEqual(initialOutside);
    expect(outsideDeepSnapshot()).toEqual(initialDeep);
    for (const f of SENTINEL_FILES) expect(readFileSync(f, 'utf8')).toBe(`${SECRET} in ${f}\n`);
    expect(existsSync(`/tmp/${EVIL}`)).toBe(false);
    expect(JSON.stringify(server.events.all)).not.toContain(SECRET);
  });
});
