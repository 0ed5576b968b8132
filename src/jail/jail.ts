/**
 * A user's root as a FileSystem with chroot semantics.
 *
 * How it confines: every path is resolved by the kernel, inside the root directory fd, with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) in the native addon (native/resolve.c; the model is
 * stated in native/jail.h); mutations run as *at() calls on a resolved parent fd and a single leaf
 * name. Resolution and use are one step on a file descriptor, so a concurrent rename or symlink swap
 * cannot redirect them outside the root.
 * `..` at the root stays at the root; absolute symlinks start at the root.
 *
 * Limits, stated plainly: mount points inside a root are followed (an admin's bind mount is
 * trusted); special files (FIFOs, sockets, devices) are listed and stat-able but never opened;
 * ownership is never changed. Host paths never leave this module: errors carry errno codes only.
 */
import { constants as C, fstat as fsFstat, fsync as fsFsync, close as fsClose, type Stats } from 'node:fs';
import * as native from './native.js';
import { FileIo } from './file-io.js';
import { writesFile, type DirEntry, type DirReader, type FileStat, type FileSystem, type OpenFile, type OpenFlags, type SetAttrs, type VfsStat } from '../fs/file-system.js';

function errnoError(code: string, syscall: string): Error {
  return Object.assign(new Error(`${code}: ${syscall}`), { code, syscall });
}

function fromNative(s: native.NativeStat): FileStat {
  return { mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, atime: s.atime, mtime: s.mtime, nlink: s.nlink, dev: s.dev, ino: s.ino };
}

function fromNode(s: Stats): FileStat {
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size,
    atime: Math.floor(s.atimeMs / 1000), mtime: Math.floor(s.mtimeMs / 1000), nlink: s.nlink, dev: s.dev, ino: s.ino,
  };
}

function nativeAttrs(a: SetAttrs): native.SetStatAttrs {
  const out: native.SetStatAttrs = {};
  if (a.mode !== undefined) out.mode = a.mode & 0o777; // set-id and sticky bits never reach the disk
  if (a.size !== undefined) out.size = a.size;
  if (a.atime !== undefined) out.atime = a.atime;
  if (a.mtime !== undefined) out.mtime = a.mtime;
  return out;
}

/** Counts users of a descriptor so it is closed only after the last operation on it ends. */
class FdGuard {
  #inflight = 0;
  #closing: (() => void) | null = null;
  #closed = false;
  constructor(readonly fd: number) {}
  async use<T>(fn: (fd: number) => Promise<T>): Promise<T> {
    if (this.#closed || this.#closing) throw errnoError('EBADF', 'use');
    this.#inflight++;
    try {
      return await fn(this.fd);
    } finally {
      // #closing may have been set while fn ran (TS narrowed it above).
      const closing = this.#closing as (() => void) | null;
      if (--this.#inflight === 0 && closing) closing();
    }
  }
  /** Resolves when no operation uses the fd any more; then the caller closes it. */
  drain(): Promise<boolean> {
    if (this.#closed || this.#closing) return Promise.resolve(false);
    if (this.#inflight === 0) {
      this.#closed = true;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      this.#closing = () => {
        this.#closed = true;
        resolve(true);
      };
    });
  }
}

/** Read-only opens of files smaller than this read them whole in the open job (OpenFile.head). */
const PREFETCH = 64 * 1024;
/**
 * How long a JailFile keeps that content. Memory, not semantics (the session decides which READs it
 * may answer): a client holding 512 small files open must not pin 32 MiB.
 */
const HEAD_KEEP_MS = 250;

class JailFile implements OpenFile {
  readonly #guard: FdGuard;
  readonly #io: FileIo;
  #head: Buffer | undefined;
  #forget: NodeJS.Timeout | undefined;
  constructor(fd: number, readonly stat: FileStat, head?: Buffer) {
    this.#guard = new FdGuard(fd);
    this.#io = new FileIo(fd);
    this.#head = head;
    if (head !== undefined) this.#forget = setTimeout(() => this.#dropHead(), HEAD_KEEP_MS).unref();
  }
  #dropHead(): void {
    clearTimeout(this.#forget);
    this.#forget = undefined;
    this.#head = undefined;
  }
  get head(): Buffer | undefined {
    return this.#head;
  }
  read(position: number, into: Buffer): Promise<number> {
    return this.#guard.use(() => this.#io.read(position, into));
  }
  write(position: number, data: Buffer): Promise<void> {
    return this.#guard.use(() => this.#io.write(position, data));
  }
  fstat(): Promise<FileStat> {
    return this.#guard.use((fd) => new Promise((resolve, reject) => fsFstat(fd, (err, s) => (err ? reject(err) : resolve(fromNode(s))))));
  }
  fsetstat(attrs: SetAttrs): Promise<void> {
    return this.#guard.use((fd) => native.fsetstat(fd, nativeAttrs(attrs)));
  }
  fsync(): Promise<void> {
    return this.#guard.use((fd) => new Promise<void>((resolve, reject) => fsFsync(fd, (err) => (err ? reject(err) : resolve()))));
  }
  fstatvfs(): Promise<VfsStat> {
    return this.#guard.use((fd) => native.fstatvfs(fd));
  }
  copyTo(target: OpenFile, readOffset: number, length: number, writeOffset: number): Promise<number> {
    if (!(target instanceof JailFile)) throw errnoError('EXDEV', 'copy');
    return this.#guard.use((inFd) => target.#guard.use((outFd) => native.copyRange(inFd, readOffset, length, outFd, writeOffset)));
  }
  async close(): Promise<void> {
    this.#dropHead(); // no timer outlives the file
    if (!(await this.#guard.drain())) throw errnoError('EBADF', 'close');
    await new Promise<void>((resolve, reject) => fsClose(this.#guard.fd, (err) => (err ? reject(err) : resolve())));
  }
}

class JailDir implements DirReader {
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;
  constructor(readonly dir: native.Dir) {}
  next(max: number): Promise<DirEntry[]> {
    // One DIR* cannot be read by two threads at once: serialise.
    const p = this.#chain.then(async () => {
      if (this.#closed) throw errnoError('EBADF', 'readdir');
      const list = await native.readdir(this.dir, max);
      return list.map((e) => ({ name: e.name, stat: e.stat ? fromNative(e.stat) : null }));
    });
    this.#chain = p.catch(() => undefined);
    return p;
  }
  close(): Promise<void> {
    const p = this.#chain.then(async () => {
      if (this.#closed) throw errnoError('EBADF', 'closedir');
      this.#closed = true;
      await native.closedir(this.dir);
    });
    this.#chain = p.catch(() => undefined);
    return p;
  }
}

function openFlags(f: OpenFlags): number {
  let flags = f.read && f.write ? C.O_RDWR : f.write ? C.O_WRONLY : C.O_RDONLY;
  if (f.append) flags |= C.O_APPEND;
  if (f.creat) flags |= C.O_CREAT;
  if (f.trunc) flags |= C.O_TRUNC;
  if (f.excl) flags |= C.O_EXCL;
  return flags;
}

export class Jail implements FileSystem {
  readonly #root: FdGuard;
  #closed = false;

  /**
   * Opens `hostRoot` as a jail. Fails closed if the kernel cannot confine (no openat2).
   * `noSymlinks`: paths are taken as already resolved, and any symlink in one fails with ELOOP
   * instead of being followed (src/folders/ resolves with a plain jail, checks, then acts with this).
   */
  constructor(
    readonly hostRoot: string,
    opts: { noSymlinks?: boolean } = {},
  ) {
    if (!native.probe()) throw errnoError('ENOSYS', 'openat2');
    this.#root = new FdGuard(native.openRoot(hostRoot, opts.noSymlinks === true));
  }

  #in<T>(fn: (rootFd: number) => Promise<T>): Promise<T> {
    return this.#root.use(fn);
  }

  async open(path: string, flags: OpenFlags, mode: number, stagingPath?: string): Promise<OpenFile> {
    const readOnly = flags.read && !writesFile(flags);
    const at = stagingPath ?? path;
    const { fd, stat, head } = await this.#in((r) => native.open(r, at, openFlags(flags), mode & 0o777, readOnly ? PREFETCH : 0));
    return new JailFile(fd, fromNative(stat), head);
  }
  async opendir(path: string): Promise<DirReader> {
    return new JailDir(await this.#in((r) => native.opendir(r, path)));
  }
  async stat(path: string): Promise<FileStat> {
    return fromNative(await this.#in((r) => native.stat(r, path, true)));
  }
  async lstat(path: string): Promise<FileStat> {
    return fromNative(await this.#in((r) => native.stat(r, path, false)));
  }
  setstat(path: string, attrs: SetAttrs): Promise<void> {
    return this.#in((r) => native.setstat(r, path, true, nativeAttrs(attrs)));
  }
  lsetstat(path: string, attrs: SetAttrs): Promise<void> {
    return this.#in((r) => native.setstat(r, path, false, nativeAttrs(attrs)));
  }
  mkdir(path: string, mode: number): Promise<void> {
    return this.#in((r) => native.mkdir(r, path, mode & 0o777));
  }
  rmdir(path: string): Promise<void> {
    return this.#in((r) => native.rmdir(r, path));
  }
  remove(path: string): Promise<void> {
    return this.#in((r) => native.unlink(r, path));
  }
  rename(from: string, to: string, overwrite: boolean): Promise<void> {
    return this.#in((r) => native.rename(r, from, to, !overwrite));
  }
  link(existing: string, newPath: string): Promise<void> {
    return this.#in((r) => native.link(r, existing, newPath));
  }
  symlink(target: string, linkPath: string): Promise<void> {
    return this.#in((r) => native.symlink(r, target, linkPath));
  }
  readlink(path: string): Promise<string> {
    return this.#in((r) => native.readlink(r, path));
  }
  realpath(path: string): Promise<string> {
    return this.#in((r) => native.realpath(r, path));
  }
  statvfs(path: string): Promise<VfsStat> {
    return this.#in((r) => native.statvfs(r, path));
  }

  /** Closes the root fd once no operation uses it (sessions may still be finishing). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (await this.#root.drain()) native.closeFd(this.#root.fd);
  }
}
