/**
 * The session's open handles. A handle is 16 random bytes, never a path; a session holds at most
 * `max`. A request that names a handle holds it until the request ends, and CLOSE waits for those
 * holds (settled()): a CLOSE right behind a READ parked for the in-flight budget must not close
 * the file under it.
 */
import { randomBytes } from 'node:crypto';
import type { DirEntry, DirReader, OpenFile } from '../fs/file-system.js';
import type { TransferStats } from './transfer.js';
import type { Staged } from './staged-upload.js';
import { SftpStatusError } from '../errors.js';

/** Requests still working on a handle; CLOSE waits for them. */
interface HandleUse {
  ops?: number;
  onIdle?: (() => void) | undefined;
}
/** When OpenFile.head was read, and how many changes the session had made by then (head-cache.ts). */
export interface HeadStamp {
  at: number;
  changes: number;
}
export interface FileHandle extends HandleUse {
  kind: 'file';
  path: string;
  file: OpenFile;
  stats: TransferStats;
  /** A new upload written under a hidden name until CLOSE publishes it (staged-upload.ts). */
  staged?: Staged | undefined;
  /** Set while OpenFile.head may still answer READs. */
  head?: HeadStamp | undefined;
}
export interface DirHandle extends HandleUse {
  kind: 'dir';
  path: string;
  dir: DirReader;
  /** The next batch, read while the client handles this one (one thread-pool wait less per READDIR). */
  ahead?: Promise<DirEntry[]> | undefined;
}
export type Handle = FileHandle | DirHandle;

export class HandleTable {
  readonly #open = new Map<string, Handle>();
  /** Random bytes handles are cut from: one randomBytes call per 256 handles, not per OPEN. */
  #pool: Buffer = Buffer.alloc(0);
  /** While a request starts (its synchronous part): the handles it looked up. */
  #held: Handle[] | undefined;
  #collecting = false;

  constructor(readonly max: number) {}

  get size(): number {
    return this.#open.size;
  }
  /** How many more handles the client may open (limits@openssh.com). */
  get free(): number {
    return Math.max(0, this.max - this.#open.size);
  }

  /** Registers `h`; at the cap, closes what it wraps (no descriptor leaks) and throws FAILURE. */
  async add(h: Handle): Promise<Buffer> {
    if (this.#open.size < this.max) return this.#insert(h);
    await (h.kind === 'file' ? h.file : h.dir).close().catch(() => undefined);
    throw new SftpStatusError('FAILURE', 'Too many open handles', `handle limit ${this.max} reached`);
  }

  #insert(h: Handle): Buffer {
    let id: Buffer;
    do id = this.#random();
    while (this.#open.has(id.toString('hex')));
    this.#open.set(id.toString('hex'), h);
    return id;
  }

  #random(): Buffer {
    if (this.#pool.length < 16) this.#pool = randomBytes(4096);
    const id = Buffer.from(this.#pool.subarray(0, 16));
    this.#pool = this.#pool.subarray(16);
    return id;
  }

  /** The file `handle` names, held by the request that is starting. */
  file(handle: Buffer): FileHandle {
    const h = this.#lookup(handle);
    if (!h || h.kind !== 'file') throw new SftpStatusError('FAILURE', 'Invalid handle', 'unknown or non-file handle');
    return h;
  }
  dir(handle: Buffer): DirHandle {
    const h = this.#lookup(handle);
    if (!h || h.kind !== 'dir') throw new SftpStatusError('FAILURE', 'Invalid handle', 'unknown or non-directory handle');
    return h;
  }
  #lookup(handle: Buffer): Handle | undefined {
    const h = this.#open.get(handle.toString('hex'));
    // Only requests that name a handle pay for the list.
    if (h && this.#collecting) (this.#held ??= []).push(h);
    return h;
  }

  /** A look without a hold (a WRITE names its transfer before it starts). */
  peek(handle: Buffer): Handle | undefined {
    return this.#open.get(handle.toString('hex'));
  }

  /** Removes `handle` from the table (CLOSE): no request can start on it any more. */
  take(handle: Buffer): Handle {
    const key = handle.toString('hex');
    const h = this.#open.get(key);
    if (!h) throw new SftpStatusError('FAILURE', 'Invalid handle', 'close of unknown handle');
    this.#open.delete(key);
    return h;
  }

  /** Removes every handle (the session ends). */
  takeAll(): Handle[] {
    const all = [...this.#open.values()];
    this.#open.clear();
    return all;
  }

  /** A request starts: the handles it looks up from now until hold() are held for it. */
  collect(): void {
    this.#collecting = true;
  }

  /** Holds the handles looked up since collect(); give them to release() when the request ends. */
  hold(): Handle[] | undefined {
    this.#collecting = false;
    const held = this.#held;
    this.#held = undefined;
    if (held) for (const h of held) h.ops = (h.ops ?? 0) + 1;
    return held;
  }

  release(held: Handle[] | undefined): void {
    if (held) for (const h of held) if (--h.ops! === 0) h.onIdle?.();
  }

  /** Resolves once no request holds `h` (taken from the table first: none can start). */
  settled(h: Handle): Promise<void> {
    if (!h.ops) return Promise.resolve();
    return new Promise((resolve) => (h.onIdle = resolve));
  }
}
