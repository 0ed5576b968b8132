/**
 * Bases for FileSystem and OpenFile decorators (quota/, folders/): every call goes to `inner`
 * unless the decorator overrides it, so each one states only what it changes.
 */
import type { DirReader, FileStat, FileSystem, OpenFile, OpenFlags, SetAttrs, VfsStat } from './file-system.js';

export class ForwardingFile implements OpenFile {
  constructor(readonly inner: OpenFile) {}

  get stat(): FileStat {
    return this.inner.stat;
  }
  get head(): Buffer | undefined {
    return this.inner.head;
  }
  read(position: number, into: Buffer): Promise<number> {
    return this.inner.read(position, into);
  }
  write(position: number, data: Buffer): Promise<void> {
    return this.inner.write(position, data);
  }
  fstat(): Promise<FileStat> {
    return this.inner.fstat();
  }
  fsetstat(attrs: SetAttrs): Promise<void> {
    return this.inner.fsetstat(attrs);
  }
  fsync(): Promise<void> {
    return this.inner.fsync();
  }
  fstatvfs(): Promise<VfsStat> {
    return this.inner.fstatvfs();
  }
  /** A target wrapped by the same decorator is unwrapped: the file below copies to the file below. */
  copyTo(target: OpenFile, readOffset: number, length: number, writeOffset: number): Promise<number> {
    const below = target instanceof ForwardingFile && target.constructor === this.constructor ? target.inner : target;
    return this.inner.copyTo(below, readOffset, length, writeOffset);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export class ForwardingFileSystem implements FileSystem {
  constructor(readonly inner: FileSystem) {}

  open(path: string, flags: OpenFlags, mode: number, stagingPath?: string): Promise<OpenFile> {
    return this.inner.open(path, flags, mode, stagingPath);
  }
  opendir(path: string): Promise<DirReader> {
    return this.inner.opendir(path);
  }
  stat(path: string): Promise<FileStat> {
    return this.inner.stat(path);
  }
  lstat(path: string): Promise<FileStat> {
    return this.inner.lstat(path);
  }
  setstat(path: string, attrs: SetAttrs): Promise<void> {
    return this.inner.setstat(path, attrs);
  }
  lsetstat(path: string, attrs: SetAttrs): Promise<void> {
    return this.inner.lsetstat(path, attrs);
  }
  mkdir(path: string, mode: number): Promise<void> {
    return this.inner.mkdir(path, mode);
  }
  rmdir(path: string): Promise<void> {
    return this.inner.rmdir(path);
  }
  remove(path: string): Promise<void> {
    return this.inner.remove(path);
  }
  rename(from: string, to: string, overwrite: boolean): Promise<void> {
    return this.inner.rename(from, to, overwrite);
  }
  link(existing: string, newPath: string): Promise<void> {
    return this.inner.link(existing, newPath);
  }
  symlink(target: string, linkPath: string): Promise<void> {
    return this.inner.symlink(target, linkPath);
  }
  readlink(path: string): Promise<string> {
    return this.inner.readlink(path);
  }
  realpath(path: string): Promise<string> {
    return this.inner.realpath(path);
  }
  statvfs(path: string): Promise<VfsStat> {
    return this.inner.statvfs(path);
  }
}
