/**
 * Fault injection at the FileSystem seam: an injected error takes the same path to the client as a
 * real one (statusOf → SFTP status), so tests see exactly what a real server would send.
 */
import { posix } from 'node:path';
import type { DirReader, FileSystem, OpenFile, FileStat, SetAttrs, VfsStat, OpenFlags, DirEntry } from '../fs/file-system.js';
import { ConnectionDrop, SftpStatusError, STATUS, type StatusName } from '../errors.js';
import { FAULT_NAMES, type FaultName } from '../sftp/requests.js';

/** What failNext() may name: the fault names of the SFTP layer's request table (sftp/requests.ts). */
export const FAULT_OPS: readonly FaultOp[] = FAULT_NAMES;
export type FaultOp = FaultName;

export interface FaultOptions {
  /** Only requests on this virtual path (exact match). */
  path?: string;
  /** Message sent to the client instead of OpenSSH's text for the status. */
  message?: string;
  /** How many matching requests fail (default 1). */
  times?: number;
}

/** Standing faults; set fields to turn them on, `undefined`/0 to turn them off. */
export interface Faults {
  /** Added latency before every filesystem operation. */
  delayMs: number;
  /** Caps read+write throughput per instance (bytes per second). */
  bytesPerSecond: number;
  /**
   * Drops the client's connection once this many file bytes were read+written in total (small
   * files a client read while no fault was set, answered from the read done at OPEN, not counted).
   */
  dropAfterBytes: number;
  /** READ answers with at most this many bytes (a short read). */
  shortReadBytes: number;
  /** Writes fail as on a full disk (ENOSPC → FAILURE). */
  diskFull: boolean;
}

interface Pending {
  op: FaultOp;
  status: StatusName;
  opts: FaultOptions;
  left: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An injected CLOSE failure still closes for real: the client sees the error, no descriptor leaks. */
async function closeAfter(fault: Promise<void>, close: () => Promise<void>): Promise<void> {
  try {
    await fault;
  } catch (e) {
    await close();
    throw e;
  }
  return close();
}

/** "/in", "/in/" and "/in/." name the same place (OpenSSH's `ls /in` opens "/in/"). */
function samePath(a: string, b: string): boolean {
  const norm = (p: string) => {
    const n = posix.normalize('/' + p);
    return n.length > 1 ? n.replace(/\/+$/, '') : n;
  };
  return norm(a) === norm(b);
}

export class FaultInjector {
  readonly faults: Faults = { delayMs: 0, bytesPerSecond: 0, dropAfterBytes: 0, shortReadBytes: 0, diskFull: false };
  #pending: Pending[] = [];
  #bytes = 0;
  #nextFree = 0;

  failNext(op: FaultOp, status: StatusName, opts: FaultOptions = {}): void {
    if (!FAULT_OPS.includes(op)) throw new TypeError(`unknown operation "${op}" (expected one of ${FAULT_OPS.join(', ')})`);
    if (!(status in STATUS)) throw new TypeError(`unknown status "${status}" (expected one of ${Object.keys(STATUS).join(', ')})`);
    this.#pending.push({ op, status, opts, left: opts.times ?? 1 });
  }

  /** Before each operation: latency, then a queued failure if one matches. */
  async #before(op: FaultOp, path?: string): Promise<void> {
    if (this.faults.delayMs > 0) await sleep(this.faults.delayMs);
    const i = this.#pending.findIndex((p) => p.op === op && (p.opts.path === undefined || (path !== undefined && samePath(p.opts.path, path))));
    if (i < 0) return;
    const p = this.#pending[i]!;
    if (--p.left <= 0) this.#pending.splice(i, 1);
    throw new SftpStatusError(p.status, p.opts.message, `injected fault (${op})`);
  }

  /** No failure queued and no standing fault: nothing for a read to meet. */
  #quiet(): boolean {
    const f = this.faults;
    return this.#pending.length === 0 && f.delayMs === 0 && f.bytesPerSecond === 0 && f.dropAfterBytes === 0 && f.shortReadBytes === 0;
  }

  async #bytesMoved(n: number): Promise<void> {
    this.#bytes += n;
    const f = this.faults;
    if (f.bytesPerSecond > 0 && n > 0) {
      // One schedule for all requests: parallel reads share the bandwidth instead of each getting it.
      const now = Date.now();
      this.#nextFree = Math.max(now, this.#nextFree) + (n / f.bytesPerSecond) * 1000;
      await sleep(this.#nextFree - now);
    }
    if (f.dropAfterBytes > 0 && this.#bytes >= f.dropAfterBytes) throw new ConnectionDrop(`injected drop after ${this.#bytes} bytes`);
  }

  wrap(fs: FileSystem): FileSystem {
    const before = (op: FaultOp, path?: string) => this.#before(op, path);
    const self = this;
    const wrapFile = (file: OpenFile, path: string): OpenFile => ({
      stat: file.stat,
      // The content read at OPEN answers READs only while nothing is injected: a fault set later
      // must meet the next READ, and latency or bandwidth must apply to every byte.
      get head() {
        return self.#quiet() ? file.head : undefined;
      },
      async read(position, into) {
        await before('read', path);
        const max = self.faults.shortReadBytes > 0 ? Math.min(into.length, self.faults.shortReadBytes) : into.length;
        const n = await file.read(position, into.subarray(0, max));
        await self.#bytesMoved(n);
        return n;
      },
      async write(position, data) {
        await before('write', path);
        if (self.faults.diskFull) throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
        await file.write(position, data);
        await self.#bytesMoved(data.length);
      },
      async fstat(): Promise<FileStat> {
        await before('fstat', path);
        return file.fstat();
      },
      async fsetstat(a: SetAttrs) {
        await before('fsetstat', path);
        return file.fsetstat(a);
      },
      async fsync() {
        await before('fsync', path);
        return file.fsync();
      },
      async fstatvfs(): Promise<VfsStat> {
        await before('fstatvfs', path);
        return file.fstatvfs();
      },
      async copyTo(target, ro, len, wo) {
        await before('copy-data', path);
        return file.copyTo(unwrap.get(target) ?? target, ro, len, wo);
      },
      close: () => closeAfter(before('close', path), () => file.close()),
    });
    const unwrap = new WeakMap<OpenFile, OpenFile>();
    const wrapDir = (d: DirReader, path: string): DirReader => ({
      async next(max): Promise<DirEntry[]> {
        await before('readdir', path);
        return d.next(max);
      },
      close: () => closeAfter(before('close', path), () => d.close()),
    });
    return {
      async open(path: string, flags: OpenFlags, mode: number, stagingPath?: string) {
        await before('open', path);
        const f = await fs.open(path, flags, mode, stagingPath);
        const w = wrapFile(f, path);
        unwrap.set(w, f);
        return w;
      },
      async opendir(path) {
        await before('opendir', path);
        return wrapDir(await fs.opendir(path), path);
      },
      stat: async (p) => (await before('stat', p), fs.stat(p)),
      lstat: async (p) => (await before('lstat', p), fs.lstat(p)),
      setstat: async (p, a) => (await before('setstat', p), fs.setstat(p, a)),
      lsetstat: async (p, a) => (await before('lsetstat', p), fs.lsetstat(p, a)),
      mkdir: async (p, m) => (await before('mkdir', p), fs.mkdir(p, m)),
      rmdir: async (p) => (await before('rmdir', p), fs.rmdir(p)),
      remove: async (p) => (await before('remove', p), fs.remove(p)),
      rename: async (a, b, o) => (await before(o ? 'posix-rename' : 'rename', a), fs.rename(a, b, o)),
      link: async (a, b) => (await before('hardlink', a), fs.link(a, b)),
      symlink: async (t, l) => (await before('symlink', l), fs.symlink(t, l)),
      readlink: async (p) => (await before('readlink', p), fs.readlink(p)),
      realpath: async (p) => (await before('realpath', p), fs.realpath(p)),
      statvfs: async (p) => (await before('statvfs', p), fs.statvfs(p)),
    };
  }
}
