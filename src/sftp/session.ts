/**
 * One SFTP session: turns ssh2's request events into typed calls on a FileSystem and replies.
 * Every request gets exactly one reply; every failure goes through statusOf() (status.ts).
 * Open handles are opaque random bytes, capped per session; when the session ends, handles
 * still open are closed and logged as `incomplete` transfers.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { writesFile, type FileSystem, type OpenFile, type DirReader, type DirEntry, type OpenFlags, type FileStat } from '../fs/file-system.js';
import { statusOf, STATUS_MESSAGES } from './status.js';
import { fromClient, longname, toWire, WireReader, WireWriter, type WireAttrs } from './attrs.js';
import { Policy, changesFiles } from './policy.js';
import { decodeName, wireName } from './names.js';
import { symlinkOrderFor, linkAndTarget, type SymlinkOrder } from './symlink-order.js';
import { TransferStats } from './transfer.js';
import { BufferPool, DATA_HEADER } from './read-buffers.js';
import { ConnectionDrop, SftpStatusError, STATUS } from '../errors.js';
import type { AuditEmitter, AuditEvent, PendingMutation, SessionEvent, SessionTotals } from '../audit/events.js';
import type { RequestName } from '../config/schema.js';

/** OpenSSH's limits (sftp-server.c): 256 KiB messages, reads and writes of 256 KiB - 1 KiB. */
export const MAX_PACKET = 256 * 1024;
export const MAX_READ = MAX_PACKET - 1024;
const MAX_PATH = 4096;
/**
 * Entries per READDIR reply. OpenSSH sends 100; 256 cuts the round trips of a long listing by 2.5×
 * and stays under the client's 256 KiB message limit (an entry is at most ~650 bytes: a 255-byte
 * name twice, in the name and the longname, plus attributes).
 */
const READDIR_BATCH = 256;

/** The server's own ids, read once: process.getuid() is a syscall (~5 µs, 100 ms per 20,000-entry ls -l). */
const SERVER_UID = process.getuid?.();
const SERVER_GID = process.getgid?.();

/**
 * How long the content read at OPEN (OpenFile.head) may answer READs. Within it, and while this
 * session changes nothing, a READ sees what a read at OPEN saw; after it, READs go to the disk.
 */
const HEAD_FRESH_MS = 100;

/** Shared by every session of this process: at most 32 idle buffers (8 MiB) are kept. */
const readBuffers = new BufferPool(DATA_HEADER + MAX_READ, 32);

/** Extensions advertised in VERSION, with the versions OpenSSH announces. */
export const SERVER_EXTENSIONS: readonly [string, string][] = [
  ['posix-rename@openssh.com', '1'],
  ['statvfs@openssh.com', '2'],
  ['fstatvfs@openssh.com', '2'],
  ['hardlink@openssh.com', '1'],
  ['fsync@openssh.com', '1'],
  ['lsetstat@openssh.com', '1'],
  ['limits@openssh.com', '1'],
  ['expand-path@openssh.com', '1'],
  ['copy-data', '1'],
  ['home-directory', '1'],
  ['users-groups-by-id@openssh.com', '1'],
];

export interface SessionLimits {
  maxHandles: number;
  maxRequestsInFlight: number;
  /** Stop answering READs while this many reply bytes wait for the client's window. */
  maxInflightBytes: number;
}

export interface SessionOptions {
  user: string;
  sessionId: string;
  remote: string;
  /** The client's SSH identification string (for the SYMLINK argument order). */
  clientIdent: string;
  fs: FileSystem;
  policy: Policy;
  audit: AuditEmitter;
  limits: SessionLimits;
  startDirectory: string;
  umask: number;
  hashUploads: boolean;
  /** When set (log.hostPaths), transfer records also carry the host path under this root. */
  hostRoot?: string | undefined;
  /** Called with each request's latency (metrics). */
  observeRequest?: ((request: string, seconds: number) => void) | undefined;
  /** Name shown for files owned by the server's own uid/gid (ls -l, users-groups-by-id). */
  ownerName: string;
  groupName: string;
}

/** Requests still working on a handle; CLOSE waits for them (see #run, #lookup). */
interface HandleUse {
  ops?: number;
  onIdle?: (() => void) | undefined;
}
interface FileHandle extends HandleUse {
  kind: 'file';
  path: string;
  file: OpenFile;
  stats: TransferStats;
  /** When OpenFile.head was read, while it may still answer READs (see #head). */
  head?: { at: number; mutations: number } | undefined;
}
interface DirHandle extends HandleUse {
  kind: 'dir';
  path: string;
  dir: DirReader;
  /** The next batch, read while the client handles this one (one thread-pool wait less per READDIR). */
  ahead?: Promise<DirEntry[]> | undefined;
}
type Handle = FileHandle | DirHandle;

type Reply = () => void;

export class SftpSession {
  readonly #sftp: SFTPWrapper;
  readonly #o: SessionOptions;
  readonly #handles = new Map<string, Handle>();
  readonly #opened = Date.now();
  readonly totals: SessionTotals = { filesUp: 0, filesDown: 0, bytesIn: 0, bytesOut: 0, requests: 0, errors: 0 };
  #inflight = 0;
  /** Input paused at maxRequestsInFlight (see #run). */
  #paused = false;
  /** Counts requests that change files (changesFiles: the read-only policy's list, opens for writing). */
  #mutations = 0;
  #closed = false;
  #replyTail: Promise<void> = Promise.resolve();
  /** close() has begun: in-flight requests finish, parked READs give up. */
  #ending = false;
  #idleWaiters: (() => void)[] = [];
  /** While #run starts a request (its synchronous part): true, and the handles it looked up. */
  #collecting = false;
  #held: Handle[] | undefined;
  #readQueue: { len: number; resolve: () => void }[] = [];
  #readReserved = 0;
  readonly #symlinkOrder: SymlinkOrder;
  /** Fires on every request (idle timers). */
  onActivity: () => void = () => {};
  /** Ends the client's connection at once (a ConnectionDrop from the filesystem seam). */
  onDrop: (why: string) => void = () => {};

  /** READ buffers ssh2 kept for replies waiting for the client's window, by their memory. */
  #kept = new Map<ArrayBufferLike, Buffer>();
  constructor(sftp: SFTPWrapper, opts: SessionOptions) {
    this.#sftp = sftp;
    // A reply that waited for the window has been sent: its READ buffer goes back to the pool
    // (otherwise every such reply costs a fresh 255 KiB buffer, and the GC that comes with it).
    sftp.onPayloadSent = (payload) => {
      const buf = this.#kept.get(payload.buffer);
      if (buf === undefined) return;
      this.#kept.delete(payload.buffer);
      readBuffers.give(buf);
    };
    this.#o = opts;
    this.#symlinkOrder = symlinkOrderFor(opts.clientIdent);
    // Paths arrive as the client's bytes (names.ts), not decoded by ssh2.
    sftp.namesAsBuffers = true;
    // The client read what was queued for it: parked READs may go on.
    sftp.on('drain', () => {
      this.#releaseReads();
      this.#maybeResume();
    });
    // Answers to malformed or unknown packets take their place in the reply order too.
    sftp.answerProtocolError = (id, code, message) => this.#answer(id, code, message);
    this.#bind();
  }

  get inflight(): number {
    return this.#inflight;
  }
  get openHandles(): number {
    return this.#handles.size;
  }
  /** Reply bytes ssh2 holds until the client opens its window (0 when all were handed to the socket). */
  get unsentBytes(): number {
    return this.#sftp.outgoingBytes?.() ?? 0;
  }
  get durationMs(): number {
    return Date.now() - this.#opened;
  }

  #emit(e: SessionEvent): void {
    this.#o.audit.emit({ ...e, user: this.#o.user, sessionId: this.#o.sessionId, remote: this.#o.remote } as AuditEvent);
  }

  /** Absolute virtual path for a client path; relative paths start at the start directory. */
  #path(raw: string | Buffer): string {
    const p = typeof raw === 'string' ? raw : decodeName(raw);
    if (p.includes('\0')) throw new SftpStatusError('BAD_MESSAGE', undefined, 'NUL byte in path');
    if (Buffer.byteLength(p) > MAX_PATH) throw new SftpStatusError('BAD_MESSAGE', undefined, 'path too long');
    if (p.startsWith('/')) return p;
    const base = this.#o.startDirectory;
    if (p === '' || p === '.') return base;
    return base === '/' ? '/' + p : `${base}/${p}`;
  }

  #send(fn: Reply): void {
    if (this.#closed) return;
    try {
      fn();
    } catch {
      // The channel closed under us; nothing left to answer.
    }
  }

  /**
   * Reserves the next place in the reply order. Requests run concurrently, but replies leave in
   * the order requests arrived, as from OpenSSH's sequential sftp-server: OpenSSH's own client
   * (scp, `get -a`) truncates a download whose READ replies come back reordered.
   */
  #slot(): (reply: Reply) => void {
    const previous = this.#replyTail;
    let release!: () => void;
    this.#replyTail = new Promise<void>((r) => (release = r));
    return (reply) => {
      void previous.then(() => {
        this.#send(reply);
        release();
      });
    };
  }

  /** Answers a request that never reaches #run (unknown extension), in order. */
  #answer(id: number, code: number, message: string): void {
    this.totals.requests++;
    this.#slot()(() => this.#sftp.status(id, code, message));
  }

  /**
   * Runs one request: policy, one reply, errors mapped in one place. `onError` sees every failure
   * (a WRITE's transfer becomes `error` whatever failed). The client is paced, never refused: at
   * maxRequestsInFlight, or while more than maxInflightBytes of replies wait for its window (a
   * client that sends and does not read), ssh2 stops parsing its requests and withholds its window
   * until half of them are done and the replies have drained (OpenSSH's sftp-server likewise reads
   * only while its output has room).
   */
  #run(id: number, request: RequestName, fn: () => Promise<Reply>, opts: { writes?: boolean; onError?: (err: unknown) => void } = {}): void {
    this.totals.requests++;
    this.onActivity();
    // After a change, no READ is answered from content read before it (#head).
    if (changesFiles(request, opts)) this.#mutations++;
    const reply = this.#slot();
    if (++this.#inflight >= this.#o.limits.maxRequestsInFlight || this.#backlogged()) this.#pause();
    const started = this.#o.observeRequest ? process.hrtime.bigint() : 0n;
    const work = async () => {
      if (this.#closed) throw new SftpStatusError('CONNECTION_LOST', undefined, 'session closed');
      this.#o.policy.check(request, opts.writes ? { writes: true } : {});
      return fn();
    };
    // Handles the request names are held until it ends: a CLOSE right behind a READ parked for
    // the in-flight budget must not close the file under it.
    this.#collecting = true;
    const pending = work();
    const held = this.#held;
    this.#collecting = false;
    this.#held = undefined;
    if (held) for (const h of held) h.ops = (h.ops ?? 0) + 1;
    pending
      .then(reply, (err: unknown) => {
        opts.onError?.(err);
        if (err instanceof ConnectionDrop) {
          reply(() => undefined);
          return this.onDrop(err.message);
        }
        const st = statusOf(err);
        if (st.name !== 'EOF') this.totals.errors++;
        if (err instanceof SftpStatusError && st.name === 'PERMISSION_DENIED' && err.reason)
          this.#emit({ event: 'request.refused', what: request, why: 'policy', detail: err.reason });
        reply(() => this.#sftp.status(id, st.code, st.message));
      })
      .finally(() => {
        if (this.#o.observeRequest) this.#o.observeRequest(request, Number(process.hrtime.bigint() - started) / 1e9);
        if (held) for (const h of held) if (--h.ops! === 0) h.onIdle?.();
        this.#inflight--;
        this.#maybeResume();
        if (this.#inflight === 0) for (const w of this.#idleWaiters.splice(0)) w();
      });
  }

  /**
   * Replies waiting for the client's window beyond what READs alone can queue (their budget plus one
   * READ): the client sends and does not read. Downloads never reach it.
   */
  #backlogged(): boolean {
    return this.unsentBytes > this.#o.limits.maxInflightBytes + MAX_PACKET;
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#sftp.pauseInput();
  }

  /** Parses the requests that waited (they may pause input again) and grants the client's window. */
  #maybeResume(): void {
    if (!this.#paused || this.#inflight > this.#o.limits.maxRequestsInFlight / 2 || this.#backlogged()) return;
    this.#paused = false;
    if (this.#closed) return;
    try {
      this.#sftp.resumeInput();
    } catch (e) {
      // A listener threw while parsing what waited: as on the socket's data path, end the connection.
      this.onDrop(`error parsing queued requests: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** A NAME reply; names that are not UTF-8 go out as their original bytes (names.ts). */
  #names(id: number, entries: { filename: string; longname: string; attrs?: WireAttrs }[]): void {
    const wire = entries.map((e) => ({ filename: wireName(e.filename), longname: wireName(e.longname), attrs: e.attrs ?? ({} as WireAttrs) }));
    // ssh2's types say string; the patched name() also sends Buffers as they are.
    this.#sftp.name(id, wire as unknown as Parameters<SFTPWrapper['name']>[1]);
  }

  /** 16 random bytes, cut from a pool (one randomBytes call per 256 handles, not per OPEN). */
  #randomHandle(): Buffer {
    if (this.#handlePool.length < 16) this.#handlePool = randomBytes(4096);
    const id = Buffer.from(this.#handlePool.subarray(0, 16));
    this.#handlePool = this.#handlePool.subarray(16);
    return id;
  }
  #handlePool: Buffer = Buffer.alloc(0);

  #newHandle(h: Handle): Buffer {
    if (this.#handles.size >= this.#o.limits.maxHandles) {
      throw new SftpStatusError('FAILURE', 'Too many open handles', `handle limit ${this.#o.limits.maxHandles} reached`);
    }
    let id: Buffer;
    do id = this.#randomHandle();
    while (this.#handles.has(id.toString('hex')));
    this.#handles.set(id.toString('hex'), h);
    return id;
  }

  /** The content read at OPEN, if it may still answer this handle's READs (HEAD_FRESH_MS, no change since). */
  #head(h: FileHandle): Buffer | undefined {
    const head = h.head;
    if (head === undefined) return undefined;
    // Read at each use: a test double hides it while faults are injected.
    const data = h.file.head;
    if (data !== undefined && head.mutations === this.#mutations && Date.now() - head.at <= HEAD_FRESH_MS) return data;
    h.head = undefined;
    return undefined;
  }

  #file(handle: Buffer): FileHandle {
    const h = this.#lookup(handle);
    if (!h || h.kind !== 'file') throw new SftpStatusError('FAILURE', 'Invalid handle', 'unknown or non-file handle');
    return h;
  }
  #dir(handle: Buffer): DirHandle {
    const h = this.#lookup(handle);
    if (!h || h.kind !== 'dir') throw new SftpStatusError('FAILURE', 'Invalid handle', 'unknown or non-directory handle');
    return h;
  }
  #lookup(handle: Buffer): Handle | undefined {
    const h = this.#handles.get(handle.toString('hex'));
    // Only requests that name a handle pay for the list.
    if (h && this.#collecting) (this.#held ??= []).push(h);
    return h;
  }
  /** Resolves once no request holds `h` (it is already out of #handles: none can start). */
  #settled(h: Handle): Promise<void> {
    if (!h.ops) return Promise.resolve();
    return new Promise((resolve) => (h.onIdle = resolve));
  }

  #owner = (uid: number): string => (uid === SERVER_UID ? this.#o.ownerName : String(uid));
  #group = (gid: number): string => (gid === SERVER_GID ? this.#o.groupName : String(gid));

  #mutation(e: PendingMutation, p: Promise<void>): Promise<void> {
    return p.then(
      () => this.#emit({ ...e, ok: true } as SessionEvent),
      (err: unknown) => {
        const st = statusOf(err);
        this.#emit({ ...e, ok: false, sftpStatus: st.name, error: st.cause } as SessionEvent);
        throw err;
      },
    );
  }

  #bind(): void {
    const s = this.#sftp;
    const fs = this.#o.fs;
    const ok = (id: number): Reply => () => s.status(id, STATUS.OK, STATUS_MESSAGES.OK);

    s.on('OPEN', (id: number, filename: Path, pflags: number, attrs: Partial<WireAttrs>) => {
      const flags: OpenFlags = {
        read: (pflags & 0x01) !== 0,
        write: (pflags & 0x02) !== 0,
        append: (pflags & 0x04) !== 0,
        creat: (pflags & 0x08) !== 0,
        trunc: (pflags & 0x10) !== 0,
        excl: (pflags & 0x20) !== 0,
      };
      const writes = writesFile(flags);
      this.#run(id, 'open', async () => {
        const path = this.#path(filename);
        const a = fromClient(attrs);
        const mode = ((a.mode ?? 0o666) & 0o777) & ~this.#o.umask;
        const file = await fs.open(path, flags, mode);
        const stats = new TransferStats(path, flags, file.stat.size, this.#o.hashUploads && flags.write);
        const head = file.head !== undefined ? { at: Date.now(), mutations: this.#mutations } : undefined;
        let handle: Buffer;
        try {
          handle = this.#newHandle({ kind: 'file', path, file, stats, head });
        } catch (e) {
          await file.close().catch(() => undefined);
          throw e;
        }
        return () => s.handle(id, handle);
      }, { writes });
    });

    s.on('READ', (id: number, handle: Buffer, offset: number, len: number) => {
      this.#run(id, 'read', async () => {
        const h = this.#file(handle);
        checkOffset(offset, 0);
        const want = Math.max(0, Math.min(len, MAX_READ));
        await this.#reserveRead(want);
        let reserved = true;
        const release = () => {
          if (reserved) {
            reserved = false;
            this.#releaseRead(want);
          }
        };
        const buf = readBuffers.take();
        let n: number;
        try {
          // Released because the session closed: nobody is left to read the data.
          if (this.#ending) throw new SftpStatusError('CONNECTION_LOST', undefined, 'session closed');
          const head = this.#head(h);
          if (head === undefined) n = await h.file.read(offset, buf.subarray(DATA_HEADER, DATA_HEADER + want));
          else {
            n = offset >= head.length ? 0 : head.copy(buf, DATA_HEADER, offset, Math.min(head.length, offset + want));
            // End of file is answered from the head once; a client polling a growing file reads the disk.
            if (n === 0) h.head = undefined;
          }
        } catch (e) {
          readBuffers.give(buf);
          release();
          const st = statusOf(e);
          // A dropped connection is not a failed read: the transfer ends up `incomplete`.
          if (!(e instanceof ConnectionDrop) && !this.#ending) h.stats.failed(st.name, st.message);
          throw e;
        }
        if (n === 0) {
          readBuffers.give(buf);
          release();
          throw new SftpStatusError('EOF');
        }
        h.stats.read(offset, n);
        this.totals.bytesOut += n;
        // The reservation ends when the reply is handed to ssh2 (from then on outgoingBytes() counts it).
        return () => {
          try {
            // Kept by ssh2 (client window full): the pool gets it back once sent (onPayloadSent).
            if (s.dataInPlace(id, buf, n)) readBuffers.give(buf);
            else this.#kept.set(buf.buffer, buf);
          } finally {
            release();
          }
        };
      });
    });

    s.on('WRITE', (id: number, handle: Buffer, offset: number, data: Buffer) => {
      // Looked up now: the handle's transfer becomes `error` whatever fails (policy, offset, disk).
      const target = this.#handles.get(handle.toString('hex'));
      const onError = (e: unknown) => {
        // A session that is ending leaves the transfer `incomplete`, not `error`.
        if (target?.kind !== 'file' || e instanceof ConnectionDrop || this.#ending || this.#closed) return;
        const st = statusOf(e);
        target.stats.failed(st.name, st.message);
      };
      this.#run(id, 'write', async () => {
        try {
          const h = this.#file(handle);
          checkOffset(offset, data.length);
          h.stats.writing(offset, data);
          await h.file.write(offset, data);
          h.stats.wrote(offset, data.length);
          this.totals.bytesIn += data.length;
          return ok(id);
        } finally {
          // The write is done with `data` (and `handle`, a view of the same packet): its buffer
          // may take the next WRITE. Not given back if this never ran: the GC takes it then.
          s.releaseWriteData(data);
        }
      }, { onError });
    });

    s.on('CLOSE', (id: number, handle: Buffer) => {
      this.#run(id, 'close', async () => {
        const key = handle.toString('hex');
        const h = this.#handles.get(key);
        if (!h) throw new SftpStatusError('FAILURE', 'Invalid handle', 'close of unknown handle');
        this.#handles.delete(key);
        await this.#settled(h);
        if (h.kind === 'dir') {
          await h.dir.close();
        } else if (!writesFile(h.stats.flags)) {
          // Nothing written, nothing to flush: close(2) cannot report anything the client could act
          // on, so the reply does not wait for a trip to the thread pool.
          this.#finishTransfer(h, 'complete');
          h.file.close().catch(() => undefined);
        } else {
          try {
            await h.file.close();
          } catch (e) {
            const st = statusOf(e);
            h.stats.failed(st.name, st.message);
            this.#finishTransfer(h, 'complete');
            throw e;
          }
          this.#finishTransfer(h, 'complete');
        }
        return ok(id);
      });
    });

    s.on('FSTAT', (id: number, handle: Buffer) => {
      this.#run(id, 'fstat', async () => {
        const st = await this.#file(handle).file.fstat();
        return () => s.attrs(id, toWire(st));
      });
    });

    s.on('FSETSTAT', (id: number, handle: Buffer, attrs: Partial<WireAttrs>) => {
      this.#run(id, 'fsetstat', async () => {
        const h = this.#file(handle);
        const a = this.#checkOwnership(fromClient(attrs));
        await this.#mutation({ event: 'setstat', path: h.path, changes: describe(a) }, h.file.fsetstat(a));
        return ok(id);
      });
    });

    const statLike = (ev: 'STAT' | 'LSTAT', request: RequestName, follow: boolean) =>
      s.on(ev, (id: number, p: Path) => {
        this.#run(id, request, async () => {
          const path = this.#path(p);
          const st = follow ? await fs.stat(path) : await fs.lstat(path);
          return () => s.attrs(id, toWire(st));
        });
      });
    statLike('STAT', 'stat', true);
    statLike('LSTAT', 'lstat', false);

    s.on('SETSTAT', (id: number, p: Path, attrs: Partial<WireAttrs>) => {
      this.#run(id, 'setstat', async () => {
        const path = this.#path(p);
        const a = this.#checkOwnership(fromClient(attrs));
        await this.#mutation({ event: 'setstat', path, changes: describe(a) }, fs.setstat(path, a));
        return ok(id);
      });
    });

    s.on('OPENDIR', (id: number, p: Path) => {
      this.#run(id, 'opendir', async () => {
        const path = this.#path(p);
        const dir = await fs.opendir(path);
        let handle: Buffer;
        try {
          handle = this.#newHandle({ kind: 'dir', path, dir });
        } catch (e) {
          await dir.close().catch(() => undefined);
          throw e;
        }
        return () => s.handle(id, handle);
      });
    });

    s.on('READDIR', (id: number, handle: Buffer) => {
      this.#run(id, 'readdir', async () => {
        const h = this.#dir(handle);
        const now = Date.now();
        // Entries that vanished between listing and stat are skipped; a batch of only those is not the end.
        for (;;) {
          // Taken before waiting: pipelined READDIRs each get their own batch, in request order.
          const ahead = h.ahead;
          h.ahead = undefined;
          const entries = await (ahead ?? h.dir.next(READDIR_BATCH));
          if (entries.length === 0) throw new SftpStatusError('EOF');
          if (entries.length === READDIR_BATCH && h.ahead === undefined) {
            // A failure of the read-ahead reaches the client with the next READDIR, as it would have.
            h.ahead = h.dir.next(READDIR_BATCH);
            h.ahead.catch(() => undefined);
          }
          const names = entries
            .filter((e): e is { name: string; stat: FileStat } => e.stat !== null)
            .map((e) => ({ filename: e.name, longname: longname(e.name, e.stat, this.#owner, this.#group, now), attrs: toWire(e.stat) }));
          if (names.length === 0) continue;
          return () => this.#names(id, names);
        }
      });
    });

    s.on('REMOVE', (id: number, p: Path) => {
      this.#run(id, 'remove', async () => {
        const path = this.#path(p);
        await this.#mutation({ event: 'remove', path }, fs.remove(path));
        return ok(id);
      });
    });

    s.on('MKDIR', (id: number, p: Path, attrs: Partial<WireAttrs>) => {
      this.#run(id, 'mkdir', async () => {
        const path = this.#path(p);
        const a = fromClient(attrs);
        const mode = ((a.mode ?? 0o777) & 0o777) & ~this.#o.umask;
        await this.#mutation({ event: 'mkdir', path, mode: '0' + mode.toString(8) }, fs.mkdir(path, mode));
        return ok(id);
      });
    });

    s.on('RMDIR', (id: number, p: Path) => {
      this.#run(id, 'rmdir', async () => {
        const path = this.#path(p);
        await this.#mutation({ event: 'rmdir', path }, fs.rmdir(path));
        return ok(id);
      });
    });

    s.on('REALPATH', (id: number, p: Path) => {
      this.#run(id, 'realpath', async () => {
        const real = await fs.realpath(this.#path(p));
        return () => this.#names(id, [{ filename: real, longname: real }]);
      });
    });

    s.on('RENAME', (id: number, from: Path, to: Path) => {
      this.#run(id, 'rename', async () => {
        const [a, b] = [this.#path(from), this.#path(to)];
        await this.#mutation({ event: 'rename', from: a, to: b, overwrite: false }, fs.rename(a, b, false));
        return ok(id);
      });
    });

    s.on('READLINK', (id: number, p: Path) => {
      this.#run(id, 'readlink', async () => {
        const target = await fs.readlink(this.#path(p));
        return () => this.#names(id, [{ filename: target, longname: target }]);
      });
    });

    s.on('SYMLINK', (id: number, first: Path, second: Path) => {
      this.#run(id, 'symlink', async () => {
        const exists = (p: string) => fs.lstat(this.#path(p)).then(() => true, () => false);
        const order = await linkAndTarget(this.#symlinkOrder, nameOf(first), nameOf(second), exists);
        const path = this.#path(order.link);
        const target = order.target;
        if (target.includes('\0')) throw new SftpStatusError('BAD_MESSAGE', undefined, 'NUL byte in symlink target');
        if (Buffer.byteLength(target) > MAX_PATH) throw new SftpStatusError('BAD_MESSAGE', undefined, 'symlink target too long');
        await this.#mutation({ event: 'symlink', path, target }, fs.symlink(target, path));
        return ok(id);
      });
    });

    s.on('EXTENDED', (id: number, name: string, data: Buffer | undefined) => this.#extended(id, name, data ?? Buffer.alloc(0)));
  }

  /** chown is never done; a request to change ownership to anything else is refused. */
  #checkOwnership(a: ReturnType<typeof fromClient>): ReturnType<typeof fromClient> {
    const { uid, gid, ...rest } = a;
    if ((uid !== undefined && uid !== SERVER_UID) || (gid !== undefined && gid !== SERVER_GID))
      throw new SftpStatusError('PERMISSION_DENIED', undefined, 'changing ownership is not allowed');
    return rest;
  }

  #extended(id: number, name: string, data: Buffer): void {
    const s = this.#sftp;
    const fs = this.#o.fs;
    const r = new WireReader(data);
    const ok = (): Reply => () => s.status(id, STATUS.OK, STATUS_MESSAGES.OK);
    const reply = (buf: Buffer): Reply => () => s.extendedReply(id, buf);
    const vfsReply = (v: Awaited<ReturnType<FileSystem['statvfs']>>): Reply =>
      reply(new WireWriter().u64(v.bsize).u64(v.frsize).u64(v.blocks).u64(v.bfree).u64(v.bavail).u64(v.files).u64(v.ffree).u64(v.favail).u64(v.fsid).u64(v.flag).u64(v.namemax).toBuffer());
    switch (name.replace(/@openssh\.com$/, '')) {
      case 'posix-rename':
        return this.#run(id, 'posix-rename', async () => {
          const [a, b] = [this.#path(r.name()), this.#path(r.name())];
          await this.#mutation({ event: 'rename', from: a, to: b, overwrite: true }, fs.rename(a, b, true));
          return ok();
        });
      case 'statvfs':
        return this.#run(id, 'statvfs', async () => vfsReply(await fs.statvfs(this.#path(r.name()))));
      case 'fstatvfs':
        return this.#run(id, 'fstatvfs', async () => vfsReply(await this.#file(r.bytes()).file.fstatvfs()));
      case 'hardlink':
        return this.#run(id, 'hardlink', async () => {
          const [a, b] = [this.#path(r.name()), this.#path(r.name())];
          await this.#mutation({ event: 'link', from: a, to: b }, fs.link(a, b));
          return ok();
        });
      case 'fsync':
        return this.#run(id, 'fsync', async () => {
          await this.#file(r.bytes()).file.fsync();
          return ok();
        });
      case 'lsetstat':
        return this.#run(id, 'lsetstat', async () => {
          const path = this.#path(r.name());
          const a = this.#checkOwnership(r.attrs());
          await this.#mutation({ event: 'setstat', path, changes: describe(a) }, fs.lsetstat(path, a));
          return ok();
        });
      case 'limits':
        return this.#run(id, 'limits', async () => {
          return reply(new WireWriter().u64(MAX_PACKET).u64(MAX_READ).u64(MAX_READ).u64(Math.max(0, this.#o.limits.maxHandles - this.#handles.size)).toBuffer());
        });
      case 'expand-path':
        return this.#run(id, 'expand-path', async () => {
          const real = await fs.realpath(this.#expandTilde(r.name()));
          return () => this.#names(id, [{ filename: real, longname: real }]);
        });
      case 'copy-data':
        return this.#run(id, 'copy-data', async () => {
          const src = this.#file(r.bytes());
          const readOffset = r.u64();
          const length = r.u64();
          const dst = this.#file(r.bytes());
          const writeOffset = r.u64();
          checkOffset(readOffset, length);
          checkOffset(writeOffset, length);
          if (!src.stats.flags.read) throw new SftpStatusError('PERMISSION_DENIED', undefined, 'copy-data source not open for reading');
          if (!dst.stats.flags.write) throw new SftpStatusError('PERMISSION_DENIED', undefined, 'copy-data target not open for writing');
          // As OpenSSH: no copying a file onto itself (a copy to end of file would chase its own tail).
          const [sst, dstat] = await Promise.all([src.file.fstat(), dst.file.fstat()]);
          if (src === dst || (sst.ino !== undefined && sst.ino === dstat.ino && sst.dev === dstat.dev))
            throw new SftpStatusError('FAILURE', undefined, 'copy-data onto the file it reads');
          // Length 0 means "to end of file": the end as it is now, not as the copy moves it.
          const toCopy = length === 0 ? Math.max(0, sst.size - readOffset) : length;
          let copied: number;
          try {
            copied = toCopy === 0 ? 0 : await src.file.copyTo(dst.file, readOffset, toCopy, writeOffset);
          } catch (e) {
            const st = statusOf(e);
            dst.stats.failed(st.name, st.message);
            this.#emit({ event: 'copy', from: src.path, to: dst.path, bytes: 0, ok: false, sftpStatus: st.name, error: st.cause });
            throw e;
          }
          src.stats.read(readOffset, copied);
          dst.stats.wrote(writeOffset, copied);
          this.#emit({ event: 'copy', from: src.path, to: dst.path, bytes: copied, ok: true });
          return ok();
        });
      case 'home-directory':
        return this.#run(id, 'home-directory', async () => {
          const who = r.string();
          if (who !== '' && who !== this.#o.user) throw new SftpStatusError('FAILURE', undefined, `home-directory of another user (${who})`);
          const home = this.#o.startDirectory;
          return () => this.#names(id, [{ filename: home, longname: home }]);
        });
      case 'users-groups-by-id':
        return this.#run(id, 'users-groups-by-id', async () => {
          const ids = (b: Buffer) => {
            if (b.length % 4 !== 0) throw new SftpStatusError('BAD_MESSAGE', undefined, 'id list not a multiple of 4 bytes');
            const out: number[] = [];
            for (let i = 0; i < b.length; i += 4) out.push(b.readUInt32BE(i));
            return out;
          };
          const uids = ids(r.bytes());
          const gids = ids(r.bytes());
          const users = new WireWriter();
          for (const u of uids) users.string(u === SERVER_UID ? this.#o.ownerName : '');
          const groups = new WireWriter();
          for (const g of gids) groups.string(g === SERVER_GID ? this.#o.groupName : '');
          return reply(new WireWriter().string(users.toBuffer()).string(groups.toBuffer()).toBuffer());
        });
      default:
        this.#emit({ event: 'request.refused', what: `extended:${name.slice(0, 100)}`, why: 'unsupported' });
        this.#answer(id, STATUS.OP_UNSUPPORTED, STATUS_MESSAGES.OP_UNSUPPORTED);
    }
  }

  /** expand-path: "~" and "~/x" are the start directory; "~user" only for oneself. */
  #expandTilde(p: string): string {
    if (p === '~' || p.startsWith('~/')) return this.#path(this.#o.startDirectory + p.slice(1));
    if (p.startsWith('~')) {
      const [who, ...rest] = p.slice(1).split('/');
      if (who !== this.#o.user) throw new SftpStatusError('NO_SUCH_FILE', undefined, `expand-path of another user's home (~${who ?? ''})`);
      return this.#path([this.#o.startDirectory, ...rest].join('/'));
    }
    return this.#path(p);
  }

  /**
   * READ backpressure: bytes of READs being served plus reply bytes waiting for the client's window
   * stay under maxInflightBytes; beyond it READs wait. Reservations are granted strictly in request
   * order: a reservation ends when its reply is sent, replies leave in request order, so a later READ
   * holding budget while an earlier one waits would wait on it forever.
   */
  #reserveRead(len: number): Promise<void> {
    if (this.#ending || (this.#readQueue.length === 0 && this.#readFits(len))) {
      this.#readReserved += len;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.#readQueue.push({ len, resolve }));
  }
  #readFits(len: number): boolean {
    const cap = this.#o.limits.maxInflightBytes;
    const queued = this.#sftp.outgoingBytes?.() ?? 0;
    // One READ may always run when nothing is reserved, so progress is certain.
    return queued <= cap && (this.#readReserved === 0 || this.#readReserved + len + queued <= cap);
  }
  #releaseRead(len: number): void {
    this.#readReserved -= len;
    this.#releaseReads();
  }
  /** Grants waiting READs from the head of the queue while they fit (all of them once closing). */
  #releaseReads(): void {
    for (let head = this.#readQueue[0]; head && (this.#ending || this.#readFits(head.len)); head = this.#readQueue[0]) {
      this.#readQueue.shift();
      this.#readReserved += head.len;
      head.resolve();
    }
  }

  #finishTransfer(h: FileHandle, status: 'complete' | 'incomplete'): void {
    const rec = h.stats.record(status);
    if (this.#o.hostRoot !== undefined) rec.hostPath = posix.join(this.#o.hostRoot, posix.normalize('/' + rec.path));
    if (rec.bytesWritten > 0 || (rec.direction === 'upload' && rec.status === 'complete')) this.totals.filesUp++;
    if (rec.bytesRead > 0) this.totals.filesDown++;
    this.#emit(rec);
  }

  /** Waits (bounded) for in-flight requests, then closes every handle; open files become `incomplete`. */
  async close(waitMs = 2000): Promise<void> {
    if (this.#closed || this.#ending) return;
    // READs parked for backpressure will never be read by anyone: let them fail at once.
    this.#ending = true;
    this.#releaseReads();
    if (this.#inflight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#idleWaiters.push(r)),
        new Promise<void>((r) => (timer = setTimeout(r, waitMs))),
      ]);
      clearTimeout(timer);
    }
    this.#closed = true;
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(
      handles.map(async (h) => {
        if (h.kind === 'dir') return h.dir.close().catch(() => undefined);
        await h.file.close().catch(() => undefined);
        this.#finishTransfer(h, 'incomplete');
      }),
    );
  }
}

/** A path as ssh2 hands it over: the client's bytes (namesAsBuffers), or a string from a test's fake. */
type Path = string | Buffer;
function nameOf(p: Path): string {
  return typeof p === 'string' ? p : decodeName(p);
}

/** ssh2 decodes uint64 offsets into doubles: anything past 2^53 is not the offset the client sent. */
function checkOffset(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(offset + length)) {
    throw new SftpStatusError('BAD_MESSAGE', undefined, `offset ${offset} is beyond 2^53`);
  }
}

function describe(a: ReturnType<typeof fromClient>): { mode?: string; size?: number; atime?: number; mtime?: number } {
  const out: { mode?: string; size?: number; atime?: number; mtime?: number } = {};
  if (a.mode !== undefined) out.mode = '0' + (a.mode & 0o777).toString(8);
  if (a.size !== undefined) out.size = a.size;
  if (a.atime !== undefined) out.atime = a.atime;
  if (a.mtime !== undefined) out.mtime = a.mtime;
  return out;
}
