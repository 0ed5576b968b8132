/**
 * Speaks SFTP v3 bytes directly over an ssh2 `subsys('sftp')` channel, so tests can send requests
 * that no well-behaved client would: NUL bytes in paths, truncated fields, unknown packet types,
 * oversized lengths, forged handles. Replies are parsed with uint32 length framing across chunks.
 */
import { connect as netConnect, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';

const { Client } = ssh2;

/** SFTP v3 packet types (draft-ietf-secsh-filexfer-02 §3). */
export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

/** SFTP v3 status codes: the server's own table. */
export { STATUS as FX } from '../../src/errors.js';

export const PFLAG = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

export interface Attrs {
  size?: number | bigint;
  uid?: number;
  gid?: number;
  mode?: number;
  atime?: number;
  mtime?: number;
  extended?: [string, string][];
}

export interface NameEntry {
  /** UTF-8-decoded (lossy for names that are not UTF-8: see `bytes`). */
  filename: string;
  longname: string;
  attrs: Attrs;
  /** The filename exactly as sent. */
  bytes: Buffer;
}

export interface Reply {
  type: number;
  id: number;
  /** STATUS */
  code?: number;
  message?: string;
  lang?: string;
  /** HANDLE */
  handle?: Buffer;
  /** DATA */
  data?: Buffer;
  /** NAME */
  names?: NameEntry[];
  /** ATTRS */
  attrs?: Attrs;
  /** EXTENDED_REPLY: everything after the id. */
  extended?: Buffer;
  /** The whole payload after the length (type byte first). */
  raw: Buffer;
}

// ---------------------------------------------------------------- builders

export function u8(v: number): Buffer {
  return Buffer.from([v & 0xff]);
}
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}
export function u64(v: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
}
/** SSH string: uint32 length, then the bytes (utf8 for a JS string). */
export function str(v: string | Buffer): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return Buffer.concat([u32(b.length), b]);
}
/** SFTP v3 ATTRS: flags, then only the flagged fields. */
export function attrs(a: Attrs = {}): Buffer {
  let flags = 0;
  const parts: Buffer[] = [];
  if (a.size !== undefined) {
    flags |= 0x1;
    parts.push(u64(a.size));
  }
  if (a.uid !== undefined || a.gid !== undefined) {
    flags |= 0x2;
    parts.push(u32(a.uid ?? 0), u32(a.gid ?? 0));
  }
  if (a.mode !== undefined) {
    flags |= 0x4;
    parts.push(u32(a.mode));
  }
  if (a.atime !== undefined || a.mtime !== undefined) {
    flags |= 0x8;
    parts.push(u32(a.atime ?? 0), u32(a.mtime ?? 0));
  }
  if (a.extended?.length) {
    flags |= 0x80000000;
    parts.push(u32(a.extended.length));
    for (const [k, v] of a.extended) parts.push(str(k), str(v));
  }
  return Buffer.concat([u32(flags), ...parts]);
}

/** A whole SFTP packet: uint32 length, type, body. */
export function packet(type: number, body: Buffer): Buffer {
  return Buffer.concat([u32(body.length + 1), u8(type), body]);
}

// ---------------------------------------------------------------- parsing

class Reader {
  p = 0;
  constructor(readonly b: Buffer) {}
  get left(): number {
    return this.b.length - this.p;
  }
  u8(): number {
    if (this.left < 1) throw new Error('short reply');
    return this.b[this.p++]!;
  }
  u32(): number {
    if (this.left < 4) throw new Error('short reply');
    const v = this.b.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }
  u64(): bigint {
    if (this.left < 8) throw new Error('short reply');
    const v = this.b.readBigUInt64BE(this.p);
    this.p += 8;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.left < n) throw new Error('short reply string');
    const v = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return v;
  }
  string(): string {
    return this.bytes().toString('utf8');
  }
  attrs(): Attrs {
    const flags = this.u32();
    const a: Attrs = {};
    if (flags & 0x1) {
      const s = this.u64();
      a.size = s <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(s) : s;
    }
    if (flags & 0x2) {
      a.uid = this.u32();
      a.gid = this.u32();
    }
    if (flags & 0x4) a.mode = this.u32();
    if (flags & 0x8) {
      a.atime = this.u32();
      a.mtime = this.u32();
    }
    if (flags & 0x80000000) {
      const n = this.u32();
      a.extended = [];
      for (let i = 0; i < n; i++) a.extended.push([this.string(), this.string()]);
    }
    return a;
  }
}

/** Parses one reply payload (type byte first, without the length). */
export function parseReply(payload: Buffer): Reply {
  const r = new Reader(payload);
  const type = r.u8();
  if (type === FXP.VERSION) return { type, id: r.u32(), raw: payload };
  const id = r.u32();
  const out: Reply = { type, id, raw: payload };
  switch (type) {
    case FXP.STATUS:
      out.code = r.u32();
      // Both strings are optional in practice for very old servers; ours sends them.
      out.message = r.left >= 4 ? r.string() : '';
      out.lang = r.left >= 4 ? r.string() : '';
      break;
    case FXP.HANDLE:
      out.handle = Buffer.from(r.bytes());
      break;
    case FXP.DATA:
      out.data = Buffer.from(r.bytes());
      break;
    case FXP.NAME: {
      const n = r.u32();
      out.names = [];
      for (let i = 0; i < n; i++) {
        const bytes = Buffer.from(r.bytes());
        out.names.push({ filename: bytes.toString('utf8'), bytes, longname: r.string(), attrs: r.attrs() });
      }
      break;
    }
    case FXP.ATTRS:
      out.attrs = r.attrs();
      break;
    case FXP.EXTENDED_REPLY:
      out.extended = Buffer.from(payload.subarray(r.p));
      break;
  }
  return out;
}

/** Reads the pieces of an EXTENDED_REPLY (or any buffer) in order. */
export function replyReader(b: Buffer): { u32(): number; u64(): bigint; bytes(): Buffer; string(): string; left(): number } {
  const r = new Reader(b);
  return { u32: () => r.u32(), u64: () => r.u64(), bytes: () => r.bytes(), string: () => r.string(), left: () => r.left };
}

// ---------------------------------------------------------------- the session

export interface ConnectTarget {
  connectOptions: { host: string; port: number; username: string; password: string; hostVerifier: (key: Buffer) => boolean };
}

/** A NODELAY socket to the server (ssh2's Client leaves Nagle on). */
export function fastSocket(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port, noDelay: true }, () => {
      sock.off('error', reject);
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

/** Connects an ssh2 Client (password auth unless `extra` overrides it) over a NODELAY socket. */
export async function connectClient(t: ConnectTarget, extra: Partial<ConnectConfig> = {}): Promise<InstanceType<typeof Client>> {
  const o = t.connectOptions;
  const sock = await fastSocket(o.host, o.port);
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ ...o, sock, readyTimeout: 10_000, ...extra } as ConnectConfig);
  });
  client.on('error', () => undefined);
  return client;
}

export class RawSftp {
  #buf: Buffer = Buffer.alloc(0);
  #waiters = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  #versionWaiter: ((r: Reply) => void) | undefined;
  #nextId = 1;
  #closed = false;
  #closeWaiters: (() => void)[] = [];
  /** Replies whose id nobody waited for (for assertions). */
  readonly unmatched: Reply[] = [];
  /** Every STATUS message received (for "no host path leaks" checks). */
  readonly statusMessages: string[] = [];
  version = 0;
  extensions: [string, string][] = [];

  private constructor(
    readonly client: InstanceType<typeof Client>,
    readonly channel: ClientChannel,
    readonly ownsClient: boolean,
  ) {
    channel.on('data', (d: Buffer) => this.#onData(d));
    channel.on('close', () => this.#onClose());
    channel.on('error', () => undefined);
    channel.stderr?.on('data', () => undefined);
  }

  /** Opens a new sftp channel on `client` (or a new connection to `t`) and does INIT/VERSION. */
  static async open(t: ConnectTarget | InstanceType<typeof Client>, opts: { connect?: Partial<ConnectConfig> } = {}): Promise<RawSftp> {
    const owns = !(t instanceof Client);
    const client = t instanceof Client ? t : await connectClient(t, opts.connect);
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      client.subsys('sftp', (err, ch) => (err ? reject(err) : resolve(ch))),
    );
    const raw = new RawSftp(client, channel, owns);
    await raw.init();
    return raw;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async init(): Promise<void> {
    const v = new Promise<Reply>((resolve) => (this.#versionWaiter = resolve));
    this.channel.write(packet(FXP.INIT, u32(3)));
    const reply = await withTimeout(v, 5000, 'VERSION');
    const r = new Reader(reply.raw);
    r.u8();
    this.version = r.u32();
    this.extensions = [];
    while (r.left > 0) this.extensions.push([r.string(), r.string()]);
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    while (this.#buf.length >= 4) {
      const len = this.#buf.readUInt32BE(0);
      if (this.#buf.length < 4 + len) break;
      const payload = Buffer.from(this.#buf.subarray(4, 4 + len));
      this.#buf = this.#buf.subarray(4 + len);
      const reply = parseReply(payload);
      if (reply.type === FXP.VERSION) {
        this.#versionWaiter?.(reply);
        this.#versionWaiter = undefined;
        continue;
      }
      if (reply.type === FXP.STATUS && reply.message !== undefined) this.statusMessages.push(reply.message);
      const w = this.#waiters.get(reply.id);
      if (w) {
        this.#waiters.delete(reply.id);
        w.resolve(reply);
      } else {
        this.unmatched.push(reply);
      }
    }
  }

  #onClose(): void {
    this.#closed = true;
    for (const [, w] of this.#waiters) w.reject(new Error('sftp channel closed'));
    this.#waiters.clear();
    for (const c of this.#closeWaiters.splice(0)) c();
  }

  /** Resolves when the channel closes (or rejects after timeoutMs). */
  waitClosed(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return withTimeout(new Promise<void>((r) => this.#closeWaiters.push(r)), timeoutMs, 'channel close');
  }

  nextId(): number {
    return this.#nextId++;
  }

  /** Sends a request `type` with `id` followed by `payload`, and waits for the reply with that id. */
  request(type: number, id: number, payload: Buffer = Buffer.alloc(0), timeoutMs = 5000): Promise<Reply> {
    return this.sendRaw(packet(type, Buffer.concat([u32(id), payload])), id, timeoutMs);
  }

  /** Writes arbitrary bytes; if `id` is given, waits for the reply with that id. */
  sendRaw(bytes: Buffer, id?: number, timeoutMs = 5000): Promise<Reply> {
    if (this.#closed) return Promise.reject(new Error('sftp channel closed'));
    let p: Promise<Reply> = Promise.resolve(undefined as unknown as Reply);
    if (id !== undefined) {
      p = withTimeout(
        new Promise<Reply>((resolve, reject) => this.#waiters.set(id, { resolve, reject })),
        timeoutMs,
        `reply to id ${id}`,
      );
    }
    this.channel.write(bytes);
    return p;
  }

  // ---- conveniences (each allocates a fresh id)

  req(type: number, payload: Buffer = Buffer.alloc(0), timeoutMs?: number): Promise<Reply> {
    return this.request(type, this.nextId(), payload, timeoutMs);
  }
  extended(name: string, data: Buffer = Buffer.alloc(0)): Promise<Reply> {
    return this.req(FXP.EXTENDED, Buffer.concat([str(name), data]));
  }
  open(path: string | Buffer, pflags: number, a: Attrs = {}): Promise<Reply> {
    return this.req(FXP.OPEN, Buffer.concat([str(path), u32(pflags), attrs(a)]));
  }
  async openHandle(path: string, pflags: number, a: Attrs = {}): Promise<Buffer> {
    const r = await this.open(path, pflags, a);
    if (r.type !== FXP.HANDLE || !r.handle) throw new Error(`OPEN ${path}: ${describeReply(r)}`);
    return r.handle;
  }
  close(handle: Buffer): Promise<Reply> {
    return this.req(FXP.CLOSE, str(handle));
  }
  read(handle: Buffer, offset: number, len: number): Promise<Reply> {
    return this.req(FXP.READ, Buffer.concat([str(handle), u64(offset), u32(len)]));
  }
  write(handle: Buffer, offset: number, data: Buffer): Promise<Reply> {
    return this.req(FXP.WRITE, Buffer.concat([str(handle), u64(offset), str(data)]));
  }
  stat(path: string | Buffer): Promise<Reply> {
    return this.req(FXP.STAT, str(path));
  }
  lstat(path: string | Buffer): Promise<Reply> {
    return this.req(FXP.LSTAT, str(path));
  }
  fstat(handle: Buffer): Promise<Reply> {
    return this.req(FXP.FSTAT, str(handle));
  }
  setstat(path: string | Buffer, a: Attrs): Promise<Reply> {
    return this.req(FXP.SETSTAT, Buffer.concat([str(path), attrs(a)]));
  }
  opendir(path: string | Buffer): Promise<Reply> {
    return this.req(FXP.OPENDIR, str(path));
  }
  readdir(handle: Buffer): Promise<Reply> {
    return this.req(FXP.READDIR, str(handle));
  }
  mkdir(path: string | Buffer, a: Attrs = {}): Promise<Reply> {
    return this.req(FXP.MKDIR, Buffer.concat([str(path), attrs(a)]));
  }
  rmdir(path: string | Buffer): Promise<Reply> {
    return this.req(FXP.RMDIR, str(path));
  }
  remove(path: string | Buffer): Promise<Reply> {
    return this.req(FXP.REMOVE, str(path));
  }
  rename(from: string | Buffer, to: string | Buffer): Promise<Reply> {
    return this.req(FXP.RENAME, Buffer.concat([str(from), str(to)]));
  }
  realpath(path: string | Buffer): Promise<Reply> {
    return this.req(FXP.REALPATH, str(path));
  }
  readlink(path: string | Buffer): Promise<Reply> {
    return this.req(FXP.READLINK, str(path));
  }
  /**
   * SYMLINK in the draft's order (link path, then target). ssh2's Client identifies as
   * "SSH-2.0-ssh2js…", for which neither ssh2 nor the server swaps the arguments.
   */
  symlink(linkPath: string | Buffer, target: string | Buffer): Promise<Reply> {
    return this.req(FXP.SYMLINK, Buffer.concat([str(linkPath), str(target)]));
  }

  /** Ends this channel (and the connection if this object opened it). */
  async end(): Promise<void> {
    if (!this.#closed) {
      this.channel.end();
      await this.waitClosed(2000).catch(() => undefined);
    }
    if (this.ownsClient) this.client.end();
  }
}

export function describeReply(r: Reply): string {
  if (r.type === FXP.STATUS) return `STATUS ${r.code} ${JSON.stringify(r.message)}`;
  return `type ${r.type}`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
