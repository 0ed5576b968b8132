/**
 * An open file of a user with a quota. A WRITE or copy-data that extends the file counts the new
 * end before it runs (refused if it would pass the quota), so concurrent requests see each other;
 * one that fails or copies less than asked has its size re-read (fstat) once nothing else extends
 * the file, so a failure partway leaves the count exact. Writes that do not extend cost one compare.
 */
import type { OpenFile, SetAttrs, VfsStat } from '../fs/file-system.js';
import { ForwardingFile } from '../fs/forwarding.js';
import type { Ledger, OpenInode } from './ledger.js';
import { quotaVfs } from './vfs.js';
import { regular, type QuotaLimits } from './usage.js';

export class QuotaFile extends ForwardingFile {
  #closed = false;

  constructor(
    inner: OpenFile,
    readonly ledger: Ledger,
    readonly limits: () => QuotaLimits | undefined,
    /** The inode's entry when open for writing (shared by its handles); undefined for reading. */
    readonly entry: OpenInode | undefined,
    readonly key: string | undefined,
  ) {
    super(inner);
  }

  override write(position: number, data: Buffer): Promise<void> {
    return this.#write(position, data, false);
  }

  #write(position: number, data: Buffer, fresh: boolean): Promise<void> {
    const e = this.entry;
    const end = position + data.length;
    if (e === undefined || !e.linked || end <= e.size) return this.inner.write(position, data);
    const sync = fresh ? undefined : this.ledger.freshen(this.limits(), end - e.size);
    if (sync) return sync.then(() => this.#write(position, data, true));
    return this.#extending(e, end, async () => (await this.inner.write(position, data), true));
  }
  override async fsetstat(attrs: SetAttrs): Promise<void> {
    if (attrs.size === undefined) return this.inner.fsetstat(attrs);
    const e = this.entry;
    const before = e ? e.size : (await this.inner.fstat()).size;
    const counted = e === undefined || e.linked;
    if (counted) this.ledger.reserve(this.limits(), this.key, regular(before), regular(attrs.size));
    try {
      await this.inner.fsetstat(attrs);
    } catch (err) {
      if (counted) this.ledger.change(this.key, regular(attrs.size), regular(before));
      throw err;
    }
    if (e) {
      e.size = attrs.size;
      // A write in flight may still land past the new end: read the size back after it.
      if (e.growing > 0) e.stale = true;
    }
  }
  override async fstatvfs(): Promise<VfsStat> {
    return quotaVfs(await this.inner.fstatvfs(), this.ledger.usage(), this.limits());
  }
  override async copyTo(target: OpenFile, readOffset: number, length: number, writeOffset: number): Promise<number> {
    if (!(target instanceof QuotaFile)) return super.copyTo(target, readOffset, length, writeOffset);
    const e = target.entry;
    const len = length > 0 ? length : Math.max(0, (await this.inner.fstat()).size - readOffset);
    const copy = () => this.inner.copyTo(target.inner, readOffset, len, writeOffset);
    if (e === undefined || !e.linked || writeOffset + len <= e.size) return copy();
    let copied = 0;
    await target.#extending(e, writeOffset + len, async () => {
      copied = await copy();
      return copied === len;
    });
    return copied;
  }
  override async close(): Promise<void> {
    const e = this.entry;
    if (e && !this.#closed) {
      this.#closed = true;
      if (e.stale) await this.#settle(e);
      if (--e.refs === 0 && this.key !== undefined) this.ledger.inodes.delete(this.key);
    }
    return this.inner.close();
  }

  /** Counts the file as `end` long, runs `op` (true: it wrote all it was asked), settles if not. */
  async #extending(e: OpenInode, end: number, op: () => Promise<boolean>): Promise<void> {
    this.ledger.reserve(this.limits(), this.key, regular(e.size), regular(end));
    e.size = end;
    e.growing++;
    e.grows++;
    try {
      if (!(await op())) e.stale = true;
    } catch (err) {
      e.stale = true;
      throw err;
    } finally {
      e.growing--;
      if (e.stale && e.growing === 0) void this.#settle(e);
    }
  }

  /** Re-reads the size once no extension is under way, and corrects the count to it. */
  async #settle(e: OpenInode): Promise<void> {
    const grows = e.grows;
    const real = await this.inner.fstat().catch(() => undefined);
    if (!real || !e.stale || e.growing > 0 || e.grows !== grows) return;
    e.stale = false;
    if (e.linked) this.ledger.change(this.key, regular(e.size), regular(real.size));
    e.size = real.size;
  }
}
