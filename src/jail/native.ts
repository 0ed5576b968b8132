/**
 * Typed wrapper around the native confinement addon (native/jail.c, built to
 * build/Release/jail.node by node-gyp).
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
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { VfsStat } from '../fs/file-system.js';

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

interface Addon {
  probe(): boolean;
  openRoot(hostPath: string): number;
  closeFd(fd: number): void;
  setQuickAck(fd: number): boolean;
  tcpMinRtt(fd: number): number;
  sdNotify(socketPath: string, message: string): void;
  open(rootFd: number, vpath: string, flags: number, mode: number, prefetch?: number): Promise<OpenResult>;
  stat(rootFd: number, vpath: string, follow: boolean): Promise<NativeStat>;
  mkdir(rootFd: number, vpath: string, mode: number): Promise<void>;
  rmdir(rootFd: number, vpath: string): Promise<void>;
  unlink(rootFd: number, vpath: string): Promise<void>;
  rename(rootFd: number, oldV: string, newV: string, noReplace: boolean): Promise<void>;
  renameCompat(rootFd: number, oldV: string, newV: string): Promise<void>;
  link(rootFd: number, oldV: string, newV: string): Promise<void>;
  symlink(rootFd: number, target: string, linkV: string): Promise<void>;
  readlink(rootFd: number, vpath: string): Promise<string>;
  realpath(rootFd: number, vpath: string): Promise<string>;
  setstat(rootFd: number, vpath: string, follow: boolean, attrs: SetStatAttrs): Promise<void>;
  fsetstat(fd: number, attrs: SetStatAttrs): Promise<void>;
  statvfs(rootFd: number, vpath: string): Promise<NativeStatVfs>;
  fstatvfs(fd: number): Promise<NativeStatVfs>;
  opendir(rootFd: number, vpath: string): Promise<Dir>;
  readdir(dir: Dir, max: number): Promise<DirEntry[]>;
  closedir(dir: Dir): Promise<void>;
  copyRange(fdIn: number, offIn: number, len: number, fdOut: number, offOut: number): Promise<number>;
}

// src/jail/native.ts and dist/jail/native.js are both two levels below the package root, where
// node-gyp-build finds build/Release/jail.node (built here) or prebuilds/<platform>-<arch>/.
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

let addon: Addon | undefined;
let addonError: Error | undefined;
try {
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
  addon = require(nodeGypBuild.path(PACKAGE_ROOT)) as Addon;
} catch (e) {
  addonError = e instanceof Error ? e : new Error(String(e));
}

function native(): Addon {
  if (addon === undefined) throw addonError ?? new Error('jail addon not loaded');
  return addon;
}

/** The installed package's root, where build/Release or prebuilds/ hold the addon. */
export function packageRoot(): string {
  return PACKAGE_ROOT;
}

/** Why the addon could not be loaded, if it could not. */
export function loadError(): Error | undefined {
  return addonError;
}

/**
 * True if the addon loaded, openat2 with RESOLVE_IN_ROOT works on this kernel (and is not blocked
 * by seccomp), and /proc/self/fd can be read. Fail closed when false.
 */
export function probe(): boolean {
  return addon !== undefined && addon.probe();
}

/** Startup only (synchronous): an O_PATH directory fd for a user's root. Throws a JailError. */
export function openRoot(hostPath: string): number {
  return native().openRoot(hostPath);
}

/** Synchronous close of an fd from openRoot or open. */
export function closeFd(fd: number): void {
  native().closeFd(fd);
}

/** setsockopt(TCP_QUICKACK, 1); returns false on failure (never throws for a bad socket). */
export function setQuickAck(fd: number): boolean {
  return native().setQuickAck(fd);
}

/** The lowest RTT the kernel has seen on a TCP socket, in microseconds; -1 when it is not one. */
export function tcpMinRtt(fd: number): number {
  return native().tcpMinRtt(fd);
}

/**
 * sd_notify(3): sends `message` as one datagram to the AF_UNIX socket `socketPath` ($NOTIFY_SOCKET:
 * a path, or '@name' for an abstract socket). Throws an Error with code/errno/syscall on failure.
 * Lives in this addon (native/notify.c) because Node cannot send unix datagrams.
 */
export function sdNotify(socketPath: string, message: string): void {
  native().sdNotify(socketPath, message);
}

/**
 * Open a regular file. `flags` are Linux O_* values (fs.constants); only O_RDONLY/O_WRONLY/O_RDWR,
 * O_CREAT, O_EXCL, O_TRUNC and O_APPEND are honoured. Directories reject with EISDIR, other
 * non-regular files with ENOTREG, without ever being opened. A create through a dangling symlink
 * creates the link's target inside the root. With `prefetch` (at most 1 MiB), a file opened
 * read-only and smaller than `prefetch` bytes is also read, in the same thread-pool job (`head`).
 */
export function open(rootFd: number, vpath: string, flags: number, mode: number, prefetch = 0): Promise<OpenResult> {
  return native().open(rootFd, vpath, flags, mode, prefetch);
}

/** stat (follow = true) or lstat (follow = false; earlier components still resolve in the root). */
export function stat(rootFd: number, vpath: string, follow: boolean): Promise<NativeStat> {
  return native().stat(rootFd, vpath, follow);
}

export function mkdir(rootFd: number, vpath: string, mode: number): Promise<void> {
  return native().mkdir(rootFd, vpath, mode);
}

export function rmdir(rootFd: number, vpath: string): Promise<void> {
  return native().rmdir(rootFd, vpath);
}

export function unlink(rootFd: number, vpath: string): Promise<void> {
  return native().unlink(rootFd, vpath);
}

/**
 * renameat2; with noReplace an existing target rejects with EEXIST (RENAME_NOREPLACE). Where the
 * filesystem refuses that flag (EINVAL: NFS, some FUSE), the same job goes on as renameCompat.
 */
export function rename(rootFd: number, oldV: string, newV: string, noReplace: boolean): Promise<void> {
  return native().rename(rootFd, oldV, newV, noReplace);
}

/**
 * rename's fallback on its own (exported to test it where renameat2 takes the flag): a no-replace
 * rename without renameat2's flags. A regular file is hard-linked to the new name (atomic, EEXIST if
 * taken) and unlinked from the old; anything else is renamed after checking the new name is free
 * (racy, as OpenSSH's).
 */
export function renameCompat(rootFd: number, oldV: string, newV: string): Promise<void> {
  return native().renameCompat(rootFd, oldV, newV);
}

/** Hard link without following the source: linking a symlink links the symlink itself. */
export function link(rootFd: number, oldV: string, newV: string): Promise<void> {
  return native().link(rootFd, oldV, newV);
}

/** Create a symlink at linkV whose target string is stored verbatim. */
export function symlink(rootFd: number, target: string, linkV: string): Promise<void> {
  return native().symlink(rootFd, target, linkV);
}

/** The link's target string, verbatim (EINVAL if not a symlink). */
export function readlink(rootFd: number, vpath: string): Promise<string> {
  return native().readlink(rootFd, vpath);
}

/**
 * Canonical virtual path ("/" or "/a/b"); never contains the host root. The last component may be
 * missing. Rejects EXDEV if the result is not under the root (the root was moved on the host).
 */
export function realpath(rootFd: number, vpath: string): Promise<string> {
  return native().realpath(rootFd, vpath);
}

/** Size, then mode (masked to 0o777), then times, on one inode. follow = false acts on a link. */
export function setstat(rootFd: number, vpath: string, follow: boolean, attrs: SetStatAttrs): Promise<void> {
  return native().setstat(rootFd, vpath, follow, attrs);
}

export function fsetstat(fd: number, attrs: SetStatAttrs): Promise<void> {
  return native().fsetstat(fd, attrs);
}

export function statvfs(rootFd: number, vpath: string): Promise<NativeStatVfs> {
  return native().statvfs(rootFd, vpath);
}

export function fstatvfs(fd: number): Promise<NativeStatVfs> {
  return native().fstatvfs(fd);
}

export function opendir(rootFd: number, vpath: string): Promise<Dir> {
  return native().opendir(rootFd, vpath);
}

/**
 * Up to `max` entries (clamped to 1..4096), "." and ".." included, each with its lstat; an empty
 * array at the end. The root's ".." reports the root itself.
 */
export function readdir(dir: Dir, max: number): Promise<DirEntry[]> {
  return native().readdir(dir, max);
}

/** Idempotent. */
export function closedir(dir: Dir): Promise<void> {
  return native().closedir(dir);
}

/**
 * Copy `len` bytes (0 = to end of input) between fds at explicit offsets, with copy_file_range
 * where possible. Resolves with the number of bytes copied.
 */
export function copyRange(fdIn: number, offIn: number, len: number, fdOut: number, offOut: number): Promise<number> {
  return native().copyRange(fdIn, offIn, len, fdOut, offOut);
}
