/**
 * The FileSystem of a user whose root has a quota (src/server/quota.ts applies it; users without
 * one get the jail itself and pay nothing). Every change is counted against the root's Ledger:
 *   WRITE, copy-data, truncate/extend (OPEN with TRUNC, SETSTAT size): the inode's size change;
 *   new file, directory or symlink: one file; REMOVE, RMDIR, a name replaced by RENAME: the inode's
 *   bytes and file, only when it was the last name (lstat's nlink first); hard links: nothing.
 * Growth is refused with QuotaExceeded before it happens. Reading, listing and stat pass through.
 * Atomic uploads are these same calls (a staging file opened, renamed over the final name, or
 * removed), so their bytes count while they upload and the replaced file's go at the rename.
 */
import type { FileStat, FileSystem, OpenFile, OpenFlags, SetAttrs, VfsStat } from '../fs/file-system.js';
import { ForwardingFileSystem } from '../fs/forwarding.js';
import { isDirectory, isRegular, writesFile } from '../fs/file-system.js';
import type { Ledger } from './ledger.js';
import { QuotaFile } from './quota-file.js';
import { quotaVfs } from './vfs.js';
import { NOT_A_FILE, keyOf, regular, sameInode, stateOf, type QuotaLimits } from './usage.js';

/** The stat, or null when nothing is there. */
async function orNull(p: Promise<FileStat>): Promise<FileStat | null> {
  return p.catch((e: unknown) => {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  });
}

export class QuotaFileSystem extends ForwardingFileSystem {
  constructor(
    inner: FileSystem,
    readonly ledger: Ledger,
    /** Read at every check: a reload's new limits apply to running sessions. */
    readonly limits: () => QuotaLimits | undefined,
  ) {
    super(inner);
  }

  override async open(path: string, flags: OpenFlags, mode: number, stagingPath?: string): Promise<OpenFile> {
    if (!writesFile(flags)) return new QuotaFile(await this.inner.open(path, flags, mode), this.ledger, this.limits, undefined, undefined);
    if (stagingPath !== undefined) return this.#openStaged(path, flags, mode, stagingPath);
    if (!flags.creat && !flags.trunc) return this.#track(await this.inner.open(path, flags, mode), false);
    return this.ledger.exclusive(async () => {
      // stat, not lstat: OPEN follows a symlink to the file it creates or truncates.
      const pre = await orNull(this.inner.stat(path));
      if (pre === null && flags.creat) this.ledger.check(this.limits(), 0, 1);
      const file = await this.inner.open(path, flags, mode);
      const key = keyOf(file.stat);
      if (pre === null) this.ledger.change(key, null, stateOf(file.stat));
      else if (flags.trunc && isRegular(pre)) {
        const open = key !== undefined ? this.ledger.inodes.get(key) : undefined;
        if (open?.linked !== false) this.ledger.change(key, regular(open?.size ?? pre.size), stateOf(file.stat));
      }
      return this.#track(file, flags.trunc);
    });
  }

  /** A new upload's hidden file: one more file, unless it will replace a file (files quota full: overwriting is allowed). */
  #openStaged(path: string, flags: OpenFlags, mode: number, stagingPath: string): Promise<OpenFile> {
    return this.ledger.exclusive(async () => {
      const final = await orNull(this.inner.lstat(path));
      if (!(final !== null && isRegular(final))) this.ledger.check(this.limits(), 0, 1);
      const file = await this.inner.open(path, flags, mode, stagingPath);
      this.ledger.change(keyOf(file.stat), null, stateOf(file.stat));
      return this.#track(file, false);
    });
  }

  /** Wraps a file open for writing; handles of one inode share its size. */
  #track(file: OpenFile, truncated: boolean): QuotaFile {
    const key = keyOf(file.stat);
    let entry = key !== undefined ? this.ledger.inodes.get(key) : undefined;
    if (entry) {
      entry.refs++;
      if (truncated) entry.size = file.stat.size;
    } else {
      entry = { size: file.stat.size, refs: 1, linked: true, growing: 0, grows: 0, stale: false };
      if (key !== undefined) this.ledger.inodes.set(key, entry);
    }
    return new QuotaFile(file, this.ledger, this.limits, entry, key);
  }

  /** A name of `pre` is gone: its inode stops counting if that was its last name. */
  #unlinked(pre: FileStat): void {
    const key = keyOf(pre);
    if (isDirectory(pre)) return this.ledger.change(key, NOT_A_FILE, null);
    if (pre.nlink > 1) return;
    const open = key !== undefined ? this.ledger.inodes.get(key) : undefined;
    if (!open) return this.ledger.change(key, stateOf(pre), null);
    // Still open: writes to it no longer count (its space goes when the last handle closes).
    if (!open.linked) return;
    open.linked = false;
    this.ledger.change(key, regular(open.size), null);
  }

  /** A new name (directory, symlink) made by `make`: one more file. */
  #created(path: string, make: () => Promise<void>): Promise<void> {
    return this.ledger.exclusive(async () => {
      this.ledger.check(this.limits(), 0, 1);
      await make();
      const post = await orNull(this.inner.lstat(path)).catch(() => null);
      this.ledger.change(post ? keyOf(post) : undefined, null, NOT_A_FILE);
    });
  }

  /** SETSTAT/LSETSTAT with a size: truncation or extension of the file, counted like a write. */
  #resize(path: string, attrs: SetAttrs, size: number, follow: boolean): Promise<void> {
    return this.ledger.exclusive(async () => {
      const pre = await (follow ? this.inner.stat(path) : this.inner.lstat(path));
      const set = () => (follow ? this.inner.setstat(path, attrs) : this.inner.lsetstat(path, attrs));
      const key = keyOf(pre);
      const open = key !== undefined ? this.ledger.inodes.get(key) : undefined;
      if (!isRegular(pre) || open?.linked === false) return set();
      const before = regular(open?.size ?? pre.size);
      this.ledger.reserve(this.limits(), key, before, regular(size));
      try {
        await set();
      } catch (e) {
        this.ledger.change(key, regular(size), before);
        throw e;
      }
      if (open) {
        open.size = size;
        if (open.growing > 0) open.stale = true;
      }
    });
  }

  override setstat(path: string, attrs: SetAttrs): Promise<void> {
    return attrs.size === undefined ? this.inner.setstat(path, attrs) : this.#resize(path, attrs, attrs.size, true);
  }
  override lsetstat(path: string, attrs: SetAttrs): Promise<void> {
    return attrs.size === undefined ? this.inner.lsetstat(path, attrs) : this.#resize(path, attrs, attrs.size, false);
  }
  override mkdir(path: string, mode: number): Promise<void> {
    return this.#created(path, () => this.inner.mkdir(path, mode));
  }
  override symlink(target: string, linkPath: string): Promise<void> {
    return this.#created(linkPath, () => this.inner.symlink(target, linkPath));
  }
  override rmdir(path: string): Promise<void> {
    return this.#removed(path, () => this.inner.rmdir(path));
  }
  override remove(path: string): Promise<void> {
    return this.#removed(path, () => this.inner.remove(path));
  }
  /** A name removed by `op`: what was there (lstat first) stops counting if it was the last name. */
  #removed(path: string, op: () => Promise<void>): Promise<void> {
    return this.ledger.exclusive(async () => {
      const pre = await orNull(this.inner.lstat(path));
      await op();
      if (pre) this.#unlinked(pre);
    });
  }
  override rename(from: string, to: string, overwrite: boolean): Promise<void> {
    // Without overwrite an existing target fails the rename: nothing is replaced, nothing changes.
    if (!overwrite) return this.inner.rename(from, to, false);
    return this.ledger.exclusive(async () => {
      const [src, dst] = await Promise.all([orNull(this.inner.lstat(from)), orNull(this.inner.lstat(to))]);
      await this.inner.rename(from, to, true);
      // rename(2) between two names of one inode does nothing.
      if (dst && !(src && sameInode(src, dst))) this.#unlinked(dst);
    });
  }
  override link(existing: string, newPath: string): Promise<void> {
    // No new bytes, no new file; in turn with removes, which read the link count.
    return this.ledger.exclusive(() => this.inner.link(existing, newPath));
  }
  override async statvfs(path: string): Promise<VfsStat> {
    return quotaVfs(await this.inner.statvfs(path), this.ledger.usage(), this.limits());
  }
}
