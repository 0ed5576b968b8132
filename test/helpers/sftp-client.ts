/**
 * A small promisified SFTP client over ssh2's Client, for tests.
 *
 *   const c = await connect(server);            // server.connectOptions, or any ConnectOptions
 *   await c.writeFile('/a.txt', 'hello');
 *   const err = await c.stat('/missing').catch((e: SftpError) => e);
 *   err.code === STATUS.NO_SUCH_FILE;
 *   await c.end();
 *
 * Every method returns a promise that rejects with an SftpError whose `code` is the SFTP status
 * number (STATUS.*), or undefined when the failure was not a status reply (channel closed, ...).
 * The connection uses a socket with TCP_NODELAY (ssh2's Client never sets it, and Nagle costs
 * ~40 ms per round trip on loopback). `inbound()` returns every SFTP byte the server sent since the
 * last call: tests scan it for strings that must never reach a client (host paths, secrets).
 */
import net from 'node:net';
import ssh2 from 'ssh2';
import type { Attributes, FileEntryWithStats, InputAttributes, SFTPWrapper, Stats } from 'ssh2';

/** SFTP v3 status codes: the server's own table. */
import { STATUS } from '../../src/errors.js';
export { STATUS };

/** SSH_FXF_* open flags. */
export const OPEN = {
  READ: 0x01,
  WRITE: 0x02,
  APPEND: 0x04,
  CREAT: 0x08,
  TRUNC: 0x10,
  EXCL: 0x20,
} as const;

export class SftpError extends Error {
  override readonly name = 'SftpError';
  constructor(
    message: string,
    /** SFTP status number, or undefined if the request failed without a status reply. */
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

export interface ClientConnectOptions {
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string;
  hostVerifier?: (key: Buffer) => boolean;
}

export interface DirEntry {
  filename: string;
  longname: string;
  attrs: Attributes;
}

export interface SftpClient {
  readonly raw: SFTPWrapper;
  readonly conn: InstanceType<typeof ssh2.Client>;
  open(path: string, flags: number, attrs?: InputAttributes): Promise<Buffer>;
  close(handle: Buffer): Promise<void>;
  /** Up to `len` bytes at `position`; an empty buffer at end of file. */
  read(handle: Buffer, position: number, len: number): Promise<Buffer>;
  write(handle: Buffer, position: number, data: Buffer | string): Promise<void>;
  fstat(handle: Buffer): Promise<Stats>;
  fsetstat(handle: Buffer, attrs: InputAttributes): Promise<void>;
  stat(path: string): Promise<Stats>;
  lstat(path: string): Promise<Stats>;
  setstat(path: string, attrs: InputAttributes): Promise<void>;
  lsetstat(path: string, attrs: InputAttributes): Promise<void>;
  mkdir(path: string, attrs?: InputAttributes): Promise<void>;
  rmdir(path: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** Plain SFTP RENAME (fails if `to` exists). */
  rename(from: string, to: string): Promise<void>;
  /** posix-rename@openssh.com (replaces `to`). */
  posixRename(from: string, to: string): Promise<void>;
  /** hardlink@openssh.com: a new name `newPath` for `existing`. */
  hardlink(existing: string, newPath: string): Promise<void>;
  /** Creates `linkPath` whose content is `target`, verbatim (spec argument order on the wire). */
  symlink(target: string, linkPath: string): Promise<void>;
  readlink(path: string): Promise<string>;
  realpath(path: string): Promise<string>;
  /** expand-path@openssh.com (sent by hand: ssh2 1.17's client encodes this request wrongly). */
  expandPath(path: string): Promise<string>;
  /** home-directory extension: the virtual home of `username` ('' = oneself). */
  homeDirectory(username: string): Promise<string>;
  statvfs(path: string): Promise<Record<string, number>>;
  opendir(path: string): Promise<Buffer>;
  /** One READDIR batch ("." and ".." included), or null at end of directory. */
  readdir(handle: Buffer): Promise<DirEntry[] | null>;
  /** opendir + readdir until EOF + close; "." and ".." included. */
  list(path: string): Promise<DirEntry[]>;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer | string, flags?: number): Promise<void>;
  /** SFTP bytes received since the previous call (the raw reply stream). */
  inbound(): Buffer;
  end(): Promise<void>;
}

type Cb<T> = (err: (Error & { code?: unknown }) | null | undefined, value?: T) => void;

function wrapError(op: string, what: string, err: Error & { code?: unknown }): SftpError {
  const code = typeof err.code === 'number' ? err.code : undefined;
  return new SftpError(`${op}(${what}): ${err.message}`, code);
}

/** Renders a path argument for error messages without flooding them (4 KiB paths) or NULs. */
function show(p: string): string {
  const s = JSON.stringify(p);
  return s.length > 120 ? `${s.slice(0, 100)}…(${Buffer.byteLength(p)} bytes)` : s;
}

function call<T>(op: string, what: string, fn: (cb: Cb<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((err, value) => (err ? reject(wrapError(op, what, err)) : resolve(value as T)));
    } catch (e) {
      reject(wrapError(op, what, e instanceof Error ? e : new Error(String(e))));
    }
  });
}

/** Private parts of ssh2's client-side SFTP object used to send a hand-made EXTENDED request. */
interface SftpInternals {
  _writeReqid: number;
  _requests: Record<number, { cb: (err: Error | undefined, names?: { filename: string }[]) => void }>;
  _protocol: { channelData(id: number, data: Buffer): void };
  outgoing: { id: number; state: string };
  push(data: Buffer | null): unknown;
}

function extendedPacket(reqid: number, name: string, ...strings: string[]): Buffer {
  const parts = [name, ...strings].map((s) => Buffer.from(s, 'utf8'));
  const body = Buffer.alloc(1 + 4 + parts.reduce((n, p) => n + 4 + p.length, 0));
  body[0] = 200; // SSH_FXP_EXTENDED
  body.writeUInt32BE(reqid, 1);
  let off = 5;
  for (const p of parts) {
    body.writeUInt32BE(p.length, off);
    p.copy(body, off + 4);
    off += 4 + p.length;
  }
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function connectSocket(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

/** Connects, authenticates and opens the sftp subsystem. Pass a test server or plain options. */
export async function connect(target: { connectOptions: ClientConnectOptions } | ClientConnectOptions, overrides: Partial<ClientConnectOptions> = {}): Promise<SftpClient> {
  const opts = { ...('connectOptions' in target ? target.connectOptions : target), ...overrides };
  const sock = await connectSocket(opts.host, opts.port);
  const conn = new ssh2.Client();
  // Errors after a failed or finished setup must never become unhandled in the test process.
  conn.on('error', () => undefined);
  const raw = await new Promise<SFTPWrapper>((resolve, reject) => {
    conn.once('error', reject);
    conn.once('ready', () => {
      conn.sftp((err, sftp) => {
        conn.off('error', reject);
        if (err) reject(err);
        else resolve(sftp);
      });
    });
    conn.connect({ ...opts, sock, readyTimeout: 10_000 });
  });
  // Errors after setup surface as failed requests; never crash the test process.
  conn.on('error', () => undefined);
  raw.on('error', () => undefined);

  const internals = raw as unknown as SftpInternals;
  let received: Buffer[] = [];
  const push = internals.push.bind(raw);
  internals.push = (data: Buffer | null) => {
    if (data) received.push(Buffer.from(data));
    return push(data);
  };

  const c: SftpClient = {
    raw,
    conn,
    open: (path, flags, attrs) => call('open', show(path), (cb) => raw.open(path, flags, attrs ?? {}, cb as never)),
    close: (handle) => call('close', 'handle', (cb) => raw.close(handle, cb as never)),
    read: (handle, position, len) =>
      new Promise((resolve, reject) => {
        const buf = Buffer.alloc(len);
        raw.read(handle, buf, 0, len, position, (err, n) => (err ? reject(wrapError('read', 'handle', err as Error & { code?: unknown })) : resolve(buf.subarray(0, n))));
      }),
    write: (handle, position, data) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
      return call('write', 'handle', (cb) => raw.write(handle, buf, 0, buf.length, position, cb as never));
    },
    fstat: (handle) => call('fstat', 'handle', (cb) => raw.fstat(handle, cb as never)),
    fsetstat: (handle, attrs) => call('fsetstat', 'handle', (cb) => raw.fsetstat(handle, attrs, cb as never)),
    stat: (path) => call('stat', show(path), (cb) => raw.stat(path, cb as never)),
    lstat: (path) => call('lstat', show(path), (cb) => raw.lstat(path, cb as never)),
    setstat: (path, attrs) => call('setstat', show(path), (cb) => raw.setstat(path, attrs, cb as never)),
    lsetstat: (path, attrs) => call('lsetstat', show(path), (cb) => raw.ext_openssh_lsetstat(path, attrs, cb as never)),
    mkdir: (path, attrs) => call('mkdir', show(path), (cb) => raw.mkdir(path, attrs ?? {}, cb as never)),
    rmdir: (path) => call('rmdir', show(path), (cb) => raw.rmdir(path, cb as never)),
    remove: (path) => call('remove', show(path), (cb) => raw.unlink(path, cb as never)),
    rename: (from, to) => call('rename', `${show(from)}, ${show(to)}`, (cb) => raw.rename(from, to, cb as never)),
    posixRename: (from, to) => call('posix-rename', `${show(from)}, ${show(to)}`, (cb) => raw.ext_openssh_rename(from, to, cb as never)),
    hardlink: (existing, newPath) => call('hardlink', `${show(existing)}, ${show(newPath)}`, (cb) => raw.ext_openssh_hardlink(existing, newPath, cb as never)),
    // ssh2's symlink(targetPath, linkPath) writes linkpath first (the spec's order) to a server
    // whose ident is not OpenSSH's, which is what our server expects from ssh2js clients.
    symlink: (target, linkPath) => call('symlink', `${show(target)}, ${show(linkPath)}`, (cb) => raw.symlink(target, linkPath, cb as never)),
    readlink: (path) => call('readlink', show(path), (cb) => raw.readlink(path, cb as never)),
    realpath: (path) => call('realpath', show(path), (cb) => raw.realpath(path, cb as never)),
    expandPath: (path) =>
      call<string>('expand-path', show(path), (cb) => {
        const reqid = (internals._writeReqid = (internals._writeReqid + 1) >>> 0);
        internals._requests[reqid] = {
          cb: (err, names) => {
            if (err) return cb(err as Error & { code?: unknown });
            if (!names?.[0]) return cb(new Error('expand-path: empty NAME reply'));
            cb(undefined, names[0].filename);
          },
        };
        if (internals.outgoing.state !== 'open') throw new Error('channel closed');
        internals._protocol.channelData(internals.outgoing.id, extendedPacket(reqid, 'expand-path@openssh.com', path));
      }),
    homeDirectory: (username) =>
      call<string>('home-directory', show(username), (cb) =>
        (raw as unknown as { ext_home_dir(u: string, cb: Cb<string>): void }).ext_home_dir(username, cb),
      ),
    statvfs: (path) => call('statvfs', show(path), (cb) => raw.ext_openssh_statvfs(path, cb as never)),
    opendir: (path) => call('opendir', show(path), (cb) => raw.opendir(path, cb as never)),
    readdir: (handle) =>
      new Promise((resolve, reject) => {
        // { full: true } keeps "." and ".." (the typings lack this overload).
        const readdir = raw.readdir.bind(raw) as unknown as (h: Buffer, o: { full: boolean }, cb: (err: (Error & { code?: unknown }) | undefined, list: FileEntryWithStats[]) => void) => void;
        readdir(handle, { full: true }, (err, list) => {
          if (err && err.code === STATUS.EOF) return resolve(null);
          if (err) return reject(wrapError('readdir', 'handle', err));
          resolve(list.map((e) => ({ filename: e.filename, longname: e.longname, attrs: e.attrs })));
        });
      }),
    async list(path) {
      const h = await c.opendir(path);
      const out: DirEntry[] = [];
      try {
        for (let batch = await c.readdir(h); batch; batch = await c.readdir(h)) out.push(...batch);
      } finally {
        await c.close(h).catch(() => undefined);
      }
      return out;
    },
    async readFile(path) {
      const h = await c.open(path, OPEN.READ);
      const chunks: Buffer[] = [];
      try {
        for (let pos = 0; ; ) {
          const b = await c.read(h, pos, 32 * 1024);
          if (b.length === 0) break;
          chunks.push(b);
          pos += b.length;
        }
      } finally {
        await c.close(h).catch(() => undefined);
      }
      return Buffer.concat(chunks);
    },
    async writeFile(path, data, flags = OPEN.WRITE | OPEN.CREAT | OPEN.TRUNC) {
      const h = await c.open(path, flags);
      try {
        await c.write(h, 0, data);
      } finally {
        await c.close(h);
      }
    },
    inbound() {
      const all = Buffer.concat(received);
      received = [];
      return all;
    },
    end: () =>
      new Promise<void>((resolve) => {
        if ((conn as unknown as { _sock?: net.Socket })._sock?.destroyed) return resolve();
        conn.once('close', () => resolve());
        conn.end();
      }),
  };
  return c;
}
