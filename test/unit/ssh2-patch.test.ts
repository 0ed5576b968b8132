/**
 * Proves that the ssh2 the server runs — patches/ssh2+1.17.0.patch applied and
 * bundled into dist/vendor/ssh2.cjs (scripts/bundle-ssh2.mjs), reached through
 * src/ssh/ssh2.ts — behaves as src/ssh/ssh2-ext.d.ts describes. Each test runs a minimal ssh2
 * Server on 127.0.0.1 (ephemeral port, fresh ed25519 host key, one fixed
 * password) and talks to it with the ssh2 Client, either through the client's
 * SFTP object or by speaking raw SFTP bytes on a `subsys('sftp')` channel.
 * Where what matters is how the app uses the patch (its refusals in the audit log, the
 * server-sig-algs it sets), the tests talk to the production server (startTestServer) instead.
 */
import net from 'node:net';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ssh2 } from '../../src/ssh/ssh2.js'; // the patched ssh2 the server runs
import type {
  ClientChannel,
  ConnectConfig,
  Connection,
  ParsedKey,
  ServerConfig,
  RefusedChannelInfo,
  RefusedGlobalRequestInfo,
  SFTPWrapper,
  SftpProtocolError,
} from 'ssh2';
import { startTestServer, type TestServer } from '../../src/testing.js';

const { Client, Server, utils } = ssh2;
const STATUS = utils.sftp.STATUS_CODE;

const USER = 'tester';
const PASSWORD = 'patch-test-password';
const HOST_KEY = utils.generateKeyPairSync('ed25519').private;

// SFTP packet types (draft-02)
const FXP = {
  INIT: 1,
  VERSION: 2,
  READ: 5,
  WRITE: 6,
  REALPATH: 16,
  EXTENDED: 200,
  STATUS: 101,
  DATA: 103,
  NAME: 104,
  EXTENDED_REPLY: 201,
} as const;

type ClientType = InstanceType<typeof Client>;

interface Harness {
  client: ClientType;
  /** Server side of the connection (after authentication). */
  conn: Connection;
  /** Server-side SFTP sessions, in order of acceptance. */
  sftps: SFTPWrapper[];
  /** Errors seen on the server (connection or sftp); must stay empty. */
  serverErrors: Error[];
  nextSftp(): Promise<SFTPWrapper>;
}

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

/**
 * Starts an ssh2 server and connects an authenticated ssh2 client to it.
 * `onSftp` runs synchronously right after the server-side accept().
 */
async function start(onSftp?: (sftp: SFTPWrapper) => void): Promise<Harness> {
  const serverErrors: Error[] = [];
  const sftps: SFTPWrapper[] = [];
  const sftpWaiters: Array<(s: SFTPWrapper) => void> = [];
  let resolveConn!: (c: Connection) => void;
  const connP = new Promise<Connection>((r) => (resolveConn = r));

  const sshServer = new Server({ hostKeys: [HOST_KEY] }, (conn) => {
    conn.on('error', (err) => serverErrors.push(err));
    conn.on('authentication', (ctx) => {
      if (ctx.method === 'password' && ctx.username === USER && ctx.password === PASSWORD) {
        ctx.accept();
      } else {
        ctx.reject(['password']);
      }
    });
    conn.on('ready', () => {
      resolveConn(conn);
      conn.on('session', (accept) => {
        const session = accept();
        session.on('sftp', (acceptSftp) => {
          const sftp = acceptSftp();
          onSftp?.(sftp);
          sftp.on('error', (err: Error) => serverErrors.push(err));
          sftp.on('end', () => sftp.end());
          sftps.push(sftp);
          sftpWaiters.shift()?.(sftp);
        });
      });
    });
  });

  // Own TCP listener with TCP_NODELAY on both ends: without it Nagle plus
  // delayed ACKs add ~40 ms stalls per round trip on loopback.
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.setNoDelay(true);
    sshServer.injectSocket(sock);
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const { port } = tcp.address() as net.AddressInfo;

  const client = new Client();
  client.on('error', () => {});
  cleanups.push(async () => {
    client.end();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => tcp.close(() => r()));
  });

  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  const ready = once(client, 'ready');
  client.connect({ sock, username: USER, password: PASSWORD });
  await ready;

  return {
    client,
    conn: await connP,
    sftps,
    serverErrors,
    // Call before opening the channel: resolves with the next accepted SFTP
    nextSftp: () => new Promise<SFTPWrapper>((resolve) => sftpWaiters.push(resolve)),
  };
}

/** Client-side SFTP object with the private fields these tests inspect. */
interface ClientSftpInternals {
  _extensions: Record<string, string>;
  _maxReadLen: number;
  _maxWriteLen: number;
}

function clientSftp(client: ClientType): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => {
    client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp)));
  });
}

/** Raw SFTP over a subsystem channel: framed packets in, payloads out. */
class RawSftp {
  private pending = Buffer.alloc(0);
  private readonly packets: Buffer[] = [];
  private waiter: ((p: Buffer) => void) | undefined;

  constructor(readonly channel: ClientChannel) {
    channel.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4) {
        const len = this.pending.readUInt32BE(0);
        if (this.pending.length < 4 + len) break;
        const payload = this.pending.subarray(4, 4 + len);
        this.pending = this.pending.subarray(4 + len);
        const w = this.waiter;
        this.waiter = undefined;
        if (w) w(payload);
        else this.packets.push(payload);
      }
    });
  }

  /** Sends `uint32 length, byte type, body`. */
  send(type: number, body: Buffer): void {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(body.length + 1, 0);
    head[4] = type;
    this.channel.write(Buffer.concat([head, body]));
  }

  /** Next reply payload (type byte first). */
  next(timeoutMs = 2000): Promise<Buffer> {
    const queued = this.packets.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no SFTP reply')), timeoutMs);
      this.waiter = (p) => {
        clearTimeout(t);
        resolve(p);
      };
    });
  }

  static async open(client: ClientType): Promise<RawSftp> {
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      client.subsys('sftp', (err, ch) => (err ? reject(err) : resolve(ch)));
    });
    return new RawSftp(channel);
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}
function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return b;
}
function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
}

/** Parses a STATUS payload (type byte first). */
function parseStatus(p: Buffer): { id: number; code: number; message: string } {
  expect(p[0]).toBe(FXP.STATUS);
  const id = p.readUInt32BE(1);
  const code = p.readUInt32BE(5);
  const msgLen = p.readUInt32BE(9);
  return { id, code, message: p.subarray(13, 13 + msgLen).toString() };
}

/** Parses a VERSION payload into version + extension pairs. */
function parseVersion(p: Buffer): { version: number; exts: Array<[string, string]> } {
  expect(p[0]).toBe(FXP.VERSION);
  const version = p.readUInt32BE(1);
  const exts: Array<[string, string]> = [];
  let o = 5;
  while (o < p.length) {
    const nl = p.readUInt32BE(o);
    const name = p.subarray(o + 4, o + 4 + nl).toString();
    o += 4 + nl;
    const dl = p.readUInt32BE(o);
    const data = p.subarray(o + 4, o + 4 + dl).toString();
    o += 4 + dl;
    exts.push([name, data]);
  }
  return { version, exts };
}

/** Opens a raw SFTP channel and completes INIT/VERSION. */
async function rawSession(h: Harness): Promise<{ raw: RawSftp; sftp: SFTPWrapper }> {
  const sftpP = h.nextSftp();
  const raw = await RawSftp.open(h.client);
  const sftp = await sftpP;
  raw.send(FXP.INIT, u32(3));
  parseVersion(await raw.next());
  return { raw, sftp };
}

/** Server-side REALPATH answer used to show a session still works. */
function answerRealpath(sftp: SFTPWrapper): void {
  sftp.on('REALPATH', (reqID: number, path: string) => {
    sftp.name(reqID, [{ filename: `/real${path}`, longname: '', attrs: {} as never }]);
  });
}

async function expectRealpathWorks(raw: RawSftp, id: number): Promise<void> {
  raw.send(FXP.REALPATH, Buffer.concat([u32(id), str('/x')]));
  const p = await raw.next();
  expect(p[0]).toBe(FXP.NAME);
  expect(p.readUInt32BE(1)).toBe(id);
  const count = p.readUInt32BE(5);
  expect(count).toBe(1);
  const nameLen = p.readUInt32BE(9);
  expect(p.subarray(13, 13 + nameLen).toString()).toBe('/real/x');
}

describe('ssh2 patch (patches/ssh2+1.17.0.patch)', () => {
  it('VERSION advertises the server\'s extensions', async () => {
    const exts: Array<[string, string]> = [
      ['posix-rename@openssh.com', '1'],
      ['statvfs@openssh.com', '2'],
      ['x-test@example.com', 'hello'],
    ];
    const h = await start((sftp) => {
      sftp.serverExtensions = exts;
    });

    // What the ssh2 client records from VERSION
    const sftp = await clientSftp(h.client);
    expect((sftp as unknown as ClientSftpInternals)._extensions).toEqual(
      Object.fromEntries(exts),
    );

    // And the exact wire format: version 3, then the pairs in order
    const raw = await RawSftp.open(h.client);
    raw.send(FXP.INIT, u32(3));
    expect(parseVersion(await raw.next())).toEqual({ version: 3, exts });
    expect(h.serverErrors).toEqual([]);
  });

  it('VERSION without serverExtensions is unchanged', async () => {
    const h = await start();
    const raw = await RawSftp.open(h.client);
    raw.send(FXP.INIT, u32(3));
    const p = await raw.next();
    expect(p).toEqual(Buffer.from([FXP.VERSION, 0, 0, 0, 3]));
  });

  it('EXTENDED_REPLY reaches the client', async () => {
    const h = await start((sftp) => {
      sftp.serverExtensions = [
        ['statvfs@openssh.com', '2'],
        ['limits@openssh.com', '1'],
      ];
      sftp.on('EXTENDED', (reqID: number, name: string) => {
        if (name === 'limits@openssh.com') {
          // max-packet-length, max-read-length, max-write-length, max-open-handles
          sftp.extendedReply(
            reqID,
            Buffer.concat([u64(262144), u64(261120), u64(261120), u64(64)]),
          );
        } else if (name === 'statvfs@openssh.com') {
          // bsize frsize blocks bfree bavail files ffree favail fsid flag namemax
          const v = [4096, 4096, 1000, 500, 400, 100, 50, 40, 7, 0, 255];
          sftp.extendedReply(reqID, Buffer.concat(v.map(u64)));
        } else {
          sftp.status(reqID, STATUS.OP_UNSUPPORTED);
        }
      });
    });

    // The client asks limits@openssh.com before 'ready': the reply was parsed
    const sftp = await clientSftp(h.client);
    const internals = sftp as unknown as ClientSftpInternals;
    expect(internals._maxReadLen).toBe(261120);
    expect(internals._maxWriteLen).toBe(261120);

    const stats = await new Promise<Record<string, unknown>>((resolve, reject) => {
      sftp.ext_openssh_statvfs('/', (err, info) =>
        err ? reject(err) : resolve(info as Record<string, unknown>),
      );
    });
    expect(stats).toMatchObject({
      f_bsize: 4096,
      f_frsize: 4096,
      f_blocks: 1000,
      f_bfree: 500,
      f_bavail: 400,
      f_files: 100,
      f_ffree: 50,
      f_favail: 40,
      f_sid: 7,
      f_flag: 0,
      f_namemax: 255,
    });
    expect(h.serverErrors).toEqual([]);
  });

  it('an unknown packet type gets OP_UNSUPPORTED and the session keeps working', async () => {
    const events: SftpProtocolError[] = [];
    const h = await start((sftp) => {
      sftp.on('protocol-error', (e) => events.push(e));
      answerRealpath(sftp);
    });
    const { raw } = await rawSession(h);

    // Type 99 with a request id and some body
    raw.send(99, Buffer.concat([u32(7), str('whatever')]));
    expect(parseStatus(await raw.next())).toEqual({
      id: 7,
      code: STATUS.OP_UNSUPPORTED,
      message: 'Unsupported request',
    });

    // Type 250 too short to hold a request id: reported, not answered. The
    // next reply must be the REALPATH one.
    raw.send(250, Buffer.from([1, 2]));
    await expectRealpathWorks(raw, 8);

    expect(events).toEqual([
      { kind: 'unknown-type', type: 99, reqID: 7 },
      { kind: 'unknown-type', type: 250, reqID: undefined },
    ]);
    expect(h.serverErrors).toEqual([]);
  });

  it('a malformed READ gets BAD_MESSAGE and the session keeps working', async () => {
    const events: SftpProtocolError[] = [];
    const reads: number[] = [];
    const h = await start((sftp) => {
      sftp.on('protocol-error', (e) => events.push(e));
      sftp.on('READ', (reqID: number) => {
        reads.push(reqID);
        sftp.status(reqID, STATUS.EOF);
      });
      answerRealpath(sftp);
    });
    const { raw } = await rawSession(h);

    // READ id 9: handle ok, offset truncated, no len
    raw.send(FXP.READ, Buffer.concat([u32(9), str('abcd'), Buffer.from([0, 0, 0])]));
    expect(parseStatus(await raw.next())).toEqual({
      id: 9,
      code: STATUS.BAD_MESSAGE,
      message: 'Bad message',
    });

    // READ id 10: handle length larger than the packet, followed by 12 bytes
    // that would parse as offset + len (stock ssh2 threw a TypeError here)
    raw.send(FXP.READ, Buffer.concat([u32(10), u32(0xffffffff), Buffer.alloc(12)]));
    expect(parseStatus(await raw.next())).toMatchObject({ id: 10, code: STATUS.BAD_MESSAGE });

    // A well-formed READ still reaches the app, and so does REALPATH
    raw.send(FXP.READ, Buffer.concat([u32(11), str('h'), u64(0), u32(10)]));
    expect(parseStatus(await raw.next())).toMatchObject({ id: 11, code: STATUS.EOF });
    await expectRealpathWorks(raw, 12);

    expect(reads).toEqual([11]);
    expect(events).toEqual([
      { kind: 'malformed', type: FXP.READ, reqID: 9, message: 'Malformed READ packet' },
      { kind: 'malformed', type: FXP.READ, reqID: 10, message: 'Malformed READ packet' },
    ]);
    expect(h.serverErrors).toEqual([]);
  });

  it('a WRITE spanning several SSH packets lends its buffer until releaseWriteData(), at most once', async () => {
    const bodies = [0, 1, 2].map((i) => Buffer.alloc(100 * 1024, 0x41 + i));
    const got: Buffer[] = [];
    const intact: boolean[] = [];
    const h = await start((sftp) => {
      sftp.on('WRITE', (reqID: number, _handle: Buffer, _offset: number, data: Buffer) => {
        intact.push(data.equals(bodies[got.length]!));
        got.push(data);
        // The first WRITE is given back twice: the second call must not free it again.
        if (got.length === 1) {
          sftp.releaseWriteData(data);
          sftp.releaseWriteData(data);
        }
        sftp.status(reqID, STATUS.OK);
      });
    });
    const { raw } = await rawSession(h);
    // 100 KiB: more than one 32 KiB SSH packet, so the server assembles it.
    for (let i = 0; i < 3; i++) {
      raw.send(FXP.WRITE, Buffer.concat([u32(20 + i), str('h'), u64(0), str(bodies[i]!)]));
      expect(parseStatus(await raw.next())).toMatchObject({ id: 20 + i, code: STATUS.OK });
    }
    expect(intact).toEqual([true, true, true]);
    // The two not given back still hold their own bytes.
    expect(got[1]!.equals(bodies[1]!) && got[2]!.equals(bodies[2]!)).toBe(true);
    // The second WRITE reuses the first one's memory; the third may not share it with the second.
    expect(got[1]!.buffer).toBe(got[0]!.buffer);
    expect(got[2]!.buffer).not.toBe(got[1]!.buffer);
    expect(h.serverErrors).toEqual([]);
  });

  it('lost framing stays fatal (first packet not INIT)', async () => {
    const h = await start();
    const sftpP = h.nextSftp();
    const raw = await RawSftp.open(h.client);
    const sftp = await sftpP;
    const err = once(sftp, 'error');
    raw.send(99, u32(1));
    const [e] = (await err) as [Error];
    expect(e.message).toBe('Expected INIT packet, got 99');
    await once(raw.channel, 'close');
  });

  it('outgoingBytes() reports the backlog and drain fires when it empties', async () => {
    const h = await start();
    const { raw, sftp } = await rawSession(h);
    expect(sftp.outgoingBytes()).toBe(0);

    // Stop reading on the client: once its stream buffer is full it stops
    // adjusting the window, and the server must queue.
    raw.channel.pause();
    const chunk = Buffer.alloc(32 * 1024, 1);
    let sent = 0;
    while (sftp.outgoingBytes() === 0 && sent < 400) {
      sftp.data(1000 + sent, chunk);
      sent++;
      // Let window adjusts for already-consumed data arrive between writes
      if (sent % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    // Queue more on top of the backlog; it is all counted
    const before = sftp.outgoingBytes();
    expect(before).toBeGreaterThan(0);
    sftp.data(5000, chunk);
    expect(sftp.outgoingBytes()).toBe(before + chunk.length + 9 + 4);

    let drains = 0;
    sftp.on('drain', () => drains++);
    const drained = once(sftp, 'drain');
    // Resume and consume every DATA reply
    const total = sent + 1;
    raw.channel.resume();
    for (let i = 0; i < total; i++) expect((await raw.next())[0]).toBe(FXP.DATA);
    await drained;
    expect(sftp.outgoingBytes()).toBe(0);
    expect(drains).toBe(1);
    expect(h.serverErrors).toEqual([]);
  });

  it('an unknown channel type is refused and reported', async () => {
    const h = await start();
    const refused: RefusedChannelInfo[] = [];
    const globals: RefusedGlobalRequestInfo[] = [];
    h.conn.on('refused-channel', (info) => refused.push(info));
    h.conn.on('refused-global-request', (info) => globals.push(info));

    // The ssh2 client has no API for arbitrary channel types; use the
    // protocol writer that (normally server-side) sends an
    // auth-agent@openssh.com channel open, and register the reply callback.
    interface ClientInternals {
      _protocol: {
        _server: boolean;
        openssh_authAgent(chan: number, window: number, packetSize: number): void;
        ping(): void;
      };
      _chanMgr: { add(cb: (err: Error & { reason?: number }) => void): number };
      _callbacks: Array<(hadErr: boolean) => void>;
    }
    const ci = h.client as unknown as ClientInternals;
    const openErr = new Promise<Error & { reason?: number }>((resolve) => {
      const id = ci._chanMgr.add(resolve);
      ci._protocol._server = true;
      try {
        ci._protocol.openssh_authAgent(id, 2 * 1024 * 1024, 32 * 1024);
      } finally {
        ci._protocol._server = false;
      }
    });
    const err = await openErr;
    // Reply unchanged: SSH_OPEN_UNKNOWN_CHANNEL_TYPE (3)
    expect(err.reason).toBe(3);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.type).toBe('auth-agent@openssh.com');
    expect(refused[0]?.info).toMatchObject({ type: 'auth-agent@openssh.com', packetSize: 32 * 1024 });

    // Global requests ssh2 answers by itself: keepalive@openssh.com, and a
    // name that would reach 'request' but has no listener here
    const pingFailed = new Promise<boolean>((resolve) => {
      ci._callbacks.push(resolve);
      ci._protocol.ping();
    });
    expect(await pingFailed).toBe(true);
    await new Promise<void>((resolve) => {
      h.client.openssh_noMoreSessions((e) => {
        expect(e).toBeInstanceOf(Error);
        resolve();
      });
    });
    expect(globals).toEqual([
      { name: 'keepalive@openssh.com', wantReply: true },
      { name: 'no-more-sessions@openssh.com', wantReply: true },
    ]);

    // The connection keeps working
    const sftp = await clientSftp(h.client);
    expect(sftp).toBeDefined();
    expect(h.serverErrors).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Transport and authentication (sshd's behaviour), and input pacing.

/** ssh2 Client internals these tests drive: its Protocol and the message handlers it installed. */
interface ClientProtocolInternals {
  _protocol: {
    service(name: string): void;
    authPK(user: string, key: unknown, keyAlgo?: string, cbSign?: (buf: Buffer, cb: (sig: Buffer) => void) => void): void;
    _handlers: Record<string, (...args: never[]) => void>;
  };
}
const protocolOf = (c: ClientType) => (c as unknown as ClientProtocolInternals)._protocol;

/** Wraps one of the client's message handlers so a test sees what arrived (and may hold it back). */
function onClientMessage<A extends unknown[]>(c: ClientType, name: string, spy: (pass: () => void, ...args: A) => void): void {
  const handlers = protocolOf(c)._handlers as unknown as Record<string, (...args: A) => void>;
  const orig = handlers[name];
  handlers[name] = (...args: A) => spy(() => orig?.(...args), ...args);
}

/** Connects an ssh2 Client; `beforeHandshake` runs right after connect(), when its Protocol exists. */
function connectWith(cfg: ConnectConfig, beforeHandshake?: (c: ClientType) => void): Promise<{ client: ClientType; error?: Error & { code?: unknown } }> {
  const client = new Client();
  cleanups.push(() => void client.end());
  return new Promise((resolve) => {
    client.once('ready', () => resolve({ client }));
    client.once('error', (error: Error) => resolve({ client, error }));
    client.connect({ readyTimeout: 10_000, ...cfg });
    beforeHandshake?.(client);
  });
}

/** A bare ssh2 Server on 127.0.0.1 with `cfg`; `onClient` wires each connection. Returns the port. */
async function bareServer(cfg: ServerConfig, onClient: (conn: Connection) => void): Promise<number> {
  const sshServer = new Server(cfg, (conn) => {
    conn.on('error', () => undefined);
    onClient(conn);
  });
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sshServer.injectSocket(sock);
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => tcp.close(() => r()));
  });
  return (tcp.address() as net.AddressInfo).port;
}

/** The server's KEXINIT name-lists, read off the wire after sending a client identification. */
async function serverKexinit(port: number): Promise<{ kex: string[]; serverHostKey: string[] }> {
  const sock = net.connect(port, '127.0.0.1');
  try {
    sock.write('SSH-2.0-kexinit-reader\r\n');
    // Its identification line, then the first binary packet: uint32 length, byte padding, payload.
    const payload = await new Promise<Buffer>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        const at = buf.indexOf('\r\n') + 2;
        if (at < 2 || buf.length < at + 4 || buf.length < at + 4 + buf.readUInt32BE(at)) return;
        const len = buf.readUInt32BE(at);
        resolve(buf.subarray(at + 5, at + 4 + len - buf[at + 4]!));
      });
      sock.once('error', reject);
      sock.once('close', () => reject(new Error('closed before KEXINIT')));
    });
    expect(payload[0]).toBe(20); // SSH_MSG_KEXINIT
    let o = 1 + 16; // type, cookie
    const lists: string[][] = [];
    for (let i = 0; i < 2; i++) {
      const n = payload.readUInt32BE(o);
      lists.push(payload.subarray(o + 4, o + 4 + n).toString().split(','));
      o += 4 + n;
    }
    return { kex: lists[0]!, serverHostKey: lists[1]! };
  } finally {
    sock.destroy();
  }
}

describe('ssh2 patch: transport and authentication as sshd does them', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a client that asks for ssh-userauth twice before authenticating still logs in (paramiko does)', async () => {
    let accepts = 0;
    const { error } = await connectWith({ ...s.connectOptions }, (c) => {
      c.once('handshake', () => {
        // ssh2 sends its own SERVICE_REQUEST right after this listener: the server sees two.
        protocolOf(c).service('ssh-userauth');
        onClientMessage(c, 'SERVICE_ACCEPT', (pass) => {
          // Authenticate once, on the second acceptance (the first one alone would start two logins).
          if (++accepts === 2) pass();
        });
      });
    });
    expect(error).toBeUndefined();
    expect(accepts).toBe(2);
    await s.events.waitFor((e) => e.event === 'auth.success' && e.user === s.username);
  });

  it('a SERVICE_REQUEST for another service is refused with DISCONNECT and logged as a protocol.error naming it', async () => {
    const { error } = await connectWith({ ...s.connectOptions }, (c) => {
      c.once('handshake', () => protocolOf(c).service('ssh-connection'));
    });
    // SSH_DISCONNECT_SERVICE_NOT_AVAILABLE
    expect(error?.code).toBe(7);
    const e = await s.events.waitFor((r) => r.event === 'protocol.error' && r.message.includes('"ssh-connection"'));
    expect(e).toMatchObject({ event: 'protocol.error', message: 'service request for "ssh-connection" refused' });
  });

  it('server-sig-algs in EXT_INFO lists exactly the signatures the server verifies, no SHA-1', async () => {
    let sigAlgs: string[] | undefined;
    const { error } = await connectWith({ ...s.connectOptions }, (c) =>
      onClientMessage(c, 'EXT_INFO', (pass, _p: unknown, exts: { name: string; algs: string[] }[]) => {
        sigAlgs = exts.find((x) => x.name === 'server-sig-algs')?.algs;
        pass();
      }),
    );
    expect(error).toBeUndefined();
    expect(sigAlgs?.join(',')).toBe('ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256');
  });
});

describe('ssh2 patch: RSA keys without SHA-1', () => {
  let rsa: { private: string; public: string };
  beforeAll(() => {
    rsa = utils.generateKeyPairSync('rsa', { bits: 2048 });
  });

  it.each([
    ['rsa-sha2-512', 'sha512'],
    ['rsa-sha2-256', 'sha256'],
  ] as const)('PK_OK names the algorithm the client sent (%s), and the login with it completes', async (algo, hash) => {
    const userKey = utils.parseKey(rsa.public) as ParsedKey;
    const verified: string[] = [];
    const port = await bareServer({ hostKeys: [HOST_KEY] }, (conn) => {
      conn.on('authentication', (ctx) => {
        if (ctx.method !== 'publickey' || !ctx.key.data.equals(userKey.getPublicSSH())) return ctx.reject(['publickey']);
        if (!ctx.signature) return ctx.accept(); // the query: answered with PK_OK
        if (userKey.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
        verified.push(ctx.hashAlgo ?? '');
        ctx.accept();
      });
    });
    const pkOk: string[] = [];
    const { error } = await connectWith({ host: '127.0.0.1', port, username: USER, privateKey: rsa.private }, (c) => {
      // Offer the key under `algo` whatever ssh2 would pick from server-sig-algs, and sign to match.
      const proto = protocolOf(c);
      const authPK = proto.authPK.bind(proto);
      proto.authPK = (user, key, _algo, cbSign) =>
        authPK(user, key, algo, cbSign && ((buf, cb) => cb((key as ParsedKey).sign(buf, hash) as Buffer)));
      onClientMessage(c, 'USERAUTH_PK_OK', (pass, _p: unknown, keyAlgo: string) => {
        pkOk.push(keyAlgo);
        pass();
      });
    });
    expect(error).toBeUndefined();
    expect(pkOk).toEqual([algo]);
    expect(verified).toEqual([hash]);
  });

  it('an RSA host key is offered in KEXINIT as rsa-sha2-512 and rsa-sha2-256 only, never ssh-rsa', async () => {
    const port = await bareServer(
      { hostKeys: [HOST_KEY, rsa.private], algorithms: { serverHostKey: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'] } },
      () => undefined,
    );
    const { serverHostKey } = await serverKexinit(port);
    expect(serverHostKey).toEqual(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256']);
    expect(serverHostKey).not.toContain('ssh-rsa');
  });
});

describe('ssh2 patch: pauseInput() / resumeInput()', () => {
  const { MAX_WINDOW, WINDOW_THRESHOLD } = createRequire(import.meta.url)('ssh2/lib/Channel.js') as { MAX_WINDOW: number; WINDOW_THRESHOLD: number };
  type Windowed = { incoming: { window: number }; outgoing: { window: number } };

  /** Waits (a turn of the event loop at a time) until `cond` holds. */
  async function until(cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; !cond(); i++) {
      if (i > 5000) throw new Error(`never: ${what}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  it('while paused no request is parsed and no window is granted; resume answers them in order and grants it', async () => {
    const h = await start();
    const { raw, sftp } = await rawSession(h);
    const parsed: number[] = [];
    sftp.on('REALPATH', (reqID: number) => {
      parsed.push(reqID);
      sftp.name(reqID, [{ filename: `/r${reqID}`, longname: '', attrs: {} as never }]);
    });
    const server = sftp as unknown as Windowed;
    const client = raw.channel as unknown as Windowed;
    const windowBefore = server.incoming.window;

    sftp.pauseInput();
    // More than half the window: unpaused, ssh2 would send WINDOW_ADJUST on the spot.
    const N = 40;
    const path = 'p'.repeat(30_000);
    let sent = 0;
    for (let id = 1; id <= N; id++) {
      const body = Buffer.concat([u32(id), str(path)]);
      raw.send(FXP.REALPATH, body);
      sent += 4 + 1 + body.length;
    }
    expect(windowBefore - sent).toBeLessThanOrEqual(WINDOW_THRESHOLD);
    await until(() => sftp.pendingInputBytes() === sent, `${sent} bytes waiting`);
    expect(parsed).toEqual([]);
    expect(server.incoming.window).toBe(windowBefore - sent);
    expect(client.outgoing.window).toBe(windowBefore - sent);

    sftp.resumeInput();
    const ids = Array.from({ length: N }, (_, i) => i + 1);
    expect(parsed).toEqual(ids);
    expect(sftp.pendingInputBytes()).toBe(0);
    expect(server.incoming.window).toBe(MAX_WINDOW);
    const replies: number[] = [];
    for (let i = 0; i < N; i++) {
      const p = await raw.next();
      expect(p[0]).toBe(FXP.NAME);
      replies.push(p.readUInt32BE(1));
    }
    expect(replies).toEqual(ids);

    // The WINDOW_ADJUST went out before anything sent after the resume is answered.
    raw.send(FXP.REALPATH, Buffer.concat([u32(N + 1), str('/x')]));
    const last = await raw.next();
    expect([last[0], last.readUInt32BE(1)]).toEqual([FXP.NAME, N + 1]);
    expect(client.outgoing.window).toBe(MAX_WINDOW - (4 + 1 + 4 + 4 + 2));
    expect(h.serverErrors).toEqual([]);
  });
});
