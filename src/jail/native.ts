/**
 * The native confinement addon's jail functions, typed (native/jail.h says what they confine and
 * how; src/native/addon.ts loads the file).
 *
 * Every path argument is a virtual path inside the root fd: the kernel resolves it with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so absolute paths and symlink targets start at
 * the root and ".." never leaves it. Mutations act on (parent fd, leaf name).
 *
 * Failures reject with a JailError: `code` is the errno name ('ENOENT', ..., or 'ENOTREG' when
 * open() refuses a special file), `errno` the positive number, `syscall` the failing call. Messages
 * never contain a path. Wrong argument types throw a TypeError synchronously (programming errors).
 *
 * The addon is loaded once, when this module is first imported. If it is missing or fails to
 * load, probe() returns false (callers fail closed) and every other function throws the load error;
 * loadError() returns it for diagnostics.
 */
import type { VfsStat } from '../fs/file-system.js';
import { addon, loadError } from '../native/addon.js';

export { loadError, packageRoot } from '../native/addon.js';

/** File metadata as fstat reports it; times are whole seconds since the epoch. */
export interface NativeStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: number;
  mtime: number;
  nlink: number;
  ino: number;
  dev: number;
  blocks: number;
}

/** statvfs(3) fields, exactly the seam's VfsStat (the addon fills them all). */
export type NativeStatVfs = VfsStat;

/** Attributes for setstat/fsetstat. Mode is masked to 0o777; times are whole seconds. */
export interface SetStatAttrs {
  mode?: number;
  size?: number;
  atime?: number;
  mtime?: number;
}

export interface OpenResult {
  /** A plain fd owned by the caller: use it with fs.read/fs.write, release it with closeFd. */
  fd: number;
  stat: NativeStat;
  /** With `prefetch`: the whole file as read right after opening, when it was smaller than that. */
  head?: Buffer;
}

export interface DirEntry {
  name: string;
  /** lstat of the entry, or null if it vanished between readdir and stat. */
  stat: NativeStat | null;
}

declare const dirBrand: unique symbol;
/** An open directory stream. Opaque; close it with closedir (a finalizer closes forgotten ones). */
export interface Dir {
  readonly [dirBrand]: true;
}

export interface JailError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export function isJailError(e: unknown): e is JailError {
  return (
    e instanceof Error &&
    typeof (e as Partial<JailError>).code === 'string' &&
    typeof (e as Partial<JailError>).errno === 'number' &&
    typeof (e as Partial<JailError>).syscall === 'string'
  );
}

/** Every function of the jail unit, once; the functions below are these, unwrapped. */
interface JailAddon {
  /**
   * True if openat2 with RESOLVE_IN_ROOT works on this kernel (and is not blocked by seccomp), and
   * /proc/self/fd can be read. Fail closed when false.
   */
  probe(): boolean;
  /**
   * Startup only (synchronous): an O_PATH directory fd for a user's root. Throws a JailError.
   * `strict`: every walk through this fd also refuses symlinks (ELOOP), for paths resolved beforehand.
   */
  openRoot(hostPath: string, strict?: boolean): number;
  /** Synchronous close of an fd from openRoot or open. */
  closeFd(fd: number): void;
  /**
   * Open a regular file. `flags` are Linux O_* values (fs.constants); only O_RDONLY/O_WRONLY/O_RDWR,
   * O_CREAT, O_EXCL, O_TRUNC and O_APPEND are honoured. Directories reject with EISDIR, other
   * non-regular files with ENOTREG, without ever being opened. A create through a dangling symlink
   * creates the link's target inside the root. With `prefetch` (at most 1 MiB), a file opened
   * read-only and smaller than `prefetch` bytes is also read, in the same thread-pool job (`head`).
   */
  open(rootFd: number, vpath: string, flags: number, mode: number, prefetch?: number): Promise<OpenResult>;
  /** stat (follow = true) or lstat (follow = false; earlier components still resolve in the root). */
  stat(rootFd: number, vpath: string, follow: boolean): Promise<NativeStat>;
  mkdir(rootFd: number, vpath: string, mode: number): Promise<void>;
  rmdir(rootFd: number, vpath: string): Promise<void>;
  unlink(rootFd: number, vpath: string): Promise<void>;
  /**
   * renameat2; with noReplace an existing target rejects with EEXIST (RENAME_NOREPLACE). Where the
   * filesystem refuses that flag (EINVAL: NFS, some FUSE), the same job goes on as renameCompat.
   */
  rename(rootFd: number, oldV: string, newV: string, noReplace: boolean): Promise<void>;
  /**
   * rename's fallback on its own (exported to test it where renameat2 takes the flag): a no-replace
   * rename without renameat2's flags. A regular file is hard-linked to the new name (atomic, EEXIST if
   * taken) and unlinked from the old; anything else is renamed after checking the new name is free
   * (racy, as OpenSSH's).
   */
  renameCompat(rootFd: number, oldV: string, newV: string): Promise<void>;
  /** Hard link without following the source: linking a symlink links the symlink itself. */
  link(rootFd: number, oldV: string, newV: string): Promise<void>;
  /** Create a symlink at linkV whose target string is stored verbatim. */
  symlink(rootFd: number, target: string, linkV: string): Promise<void>;
  /** The link's target string, verbatim (EINVAL if not a symlink). */
  readlink(rootFd: number, vpath: string): Promise<string>;
  /**
   * Canonical virtual path ("/" or "/a/b"); never contains the host root. The last component may be
   * missing. Rejects EXDEV if the result is not under the root (the root was moved on the host).
   */
  realpath(rootFd: number, vpath: string): Promise<string>;
  /** Size, then mode (masked to 0o777), then times, on one inode. follow = false acts on a link. */
  setstat(rootFd: number, vpath: string, follow: boolean, attrs: SetStatAttrs): Promise<void>;
  fsetstat(fd: number, attrs: SetStatAttrs): Promise<void>;
  statvfs(rootFd: number, vpath: string): Promise<NativeStatVfs>;
  fstatvfs(fd: number): Promise<NativeStatVfs>;
  opendir(rootFd: number, vpath: string): Promise<Dir>;
  /**
   * Up to `max` entries (clamped to 1..4096), "." and ".." included, each with its lstat; an empty
   * array at the end. The root's ".." reports the root itself.
   */
  readdir(dir: Dir, max: number): Promise<DirEntry[]>;
  /** Idempotent. */
  closedir(dir: Dir): Promise<void>;
  /**
   * Copy `len` bytes (0 = to end of input) between fds at explicit offsets, with copy_file_range
   * where possible. Resolves with the number of bytes copied.
   */
  copyRange(fdIn: number, offIn: number, len: number, fdOut: number, offOut: number): Promise<number>;
}

const jail = addon<JailAddon>();

export const {
  openRoot, closeFd, open, stat, mkdir, rmdir, unlink, rename, renameCompat, link, symlink,
  readlink, realpath, setstat, fsetstat, statvfs, fstatvfs, opendir, readdir, closedir, copyRange,
} = jail;

/** JailAddon.probe, and false when the addon did not load (instead of throwing). */
export function probe(): boolean {
  return loadError() === undefined && jail.probe();
}
