/**
 * An open file under per-folder rules: FSETSTAT on a handle is checked as SETSTAT on its path would
 * be (fchmod and futimens work on a handle opened only for reading). Everything else was decided at
 * OPEN and passes through.
 */
import type { FileStat, OpenFile, SetAttrs, VfsStat } from '../fs/file-system.js';

export class RuledFile implements OpenFile {
  constructor(
    readonly inner: OpenFile,
    /** Throws PERMISSION_DENIED when the rules refuse these attributes. */
    readonly checkAttrs: (attrs: SetAttrs) => void,
  ) {}

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
  async fsetstat(attrs: SetAttrs): Promise<void> {
    this.checkAttrs(attrs);
    return this.inner.fsetstat(attrs);
  }
  fsync(): Promise<void> {
    return this.inner.fsync();
  }
  fstatvfs(): Promise<VfsStat> {
    return this.inner.fstatvfs();
  }
  copyTo(target: OpenFile, readOffset: number, length: number, writeOffset: number): Promise<number> {
    return this.inner.copyTo(target instanceof RuledFile ? target.inner : target, readOffset, length, writeOffset);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
