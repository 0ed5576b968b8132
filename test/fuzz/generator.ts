/**
 * SFTP v3 request fuzzer: a seeded PRNG and a generator of hostile request packets.
 *
 * Every packet is built from a valid request template (each request type 3..20 and EXTENDED with
 * every extension the server announces, plus unknown names), filled with hostile values (paths
 * with "..", NUL, invalid UTF-8, host paths, symlinks out of the root; handles that are live,
 * closed, of the wrong kind or forged; ATTRS with every flag combination and garbage extensions),
 * then usually mutated (truncated, string lengths that lie, trailing garbage, wrong or unknown
 * type, flipped bytes, random body). Occasionally the SFTP framing itself is broken (length 0,
 * > 256 KiB, >= 2^31, or a length that disagrees with the body); the server must then drop that
 * channel, and the runner opens a new one.
 *
 * Each packet says what the server owes it (`expect`), derived from the final bytes:
 *   reply  - well framed, at least a type byte and a 4-byte id: exactly one reply with that id
 *            (a request type: its answer or BAD_MESSAGE; any other type: OP_UNSUPPORTED);
 *   silent - well framed, unknown type, too short for an id: no reply, channel stays open;
 *   fatal  - framing or INIT broken, or a request type too short for an id: the server closes
 *            the channel (framing is lost, nobody to answer);
 *   desync - the length field disagrees with the body: the stream is garbage from here on; the
 *            runner ends the channel itself.
 *
 * The generator is deterministic for a seed; the only outside input is the set of handles the
 * server returned (FuzzContext), whose bytes are random but whose count follows the replies.
 */

// ---------------------------------------------------------------------------------------------
// PRNG: sfc32 seeded through splitmix32 (small, fast, good enough to fuzz with)

export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const splitmix = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = splitmix();
    this.#b = splitmix();
    this.#c = splitmix();
    this.#d = splitmix();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** Uniform uint32. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }
  /** Uniform in [0, n). */
  int(n: number): number {
    if (n <= 0) return 0;
    if (n <= 0x100000000) return Math.floor((this.u32() / 0x100000000) * n);
    return Math.floor(((this.u32() * 0x100000000 + this.u32()) / 2 ** 64) * n);
  }
  /** Uniform in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.u32() < p * 0x100000000;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  /** Picks by weight: [[weight, value], ...]. */
  weighted<T>(table: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of table) total += w;
    let x = this.int(total);
    for (const [w, v] of table) {
      if (x < w) return v;
      x -= w;
    }
    return table[table.length - 1]![1];
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE(this.u32(), i);
    for (; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /** Small sizes are much more likely than big ones (log-uniform up to `max`). */
  size(max: number): number {
    const bits = this.int(Math.ceil(Math.log2(max + 1)) + 1);
    return Math.min(max, this.int(2 ** bits));
  }
}

// ---------------------------------------------------------------------------------------------
// Wire encoding

export const T = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9,
  FSETSTAT: 10, OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16,
  STAT: 17, RENAME: 18, READLINK: 19, SYMLINK: 20, EXTENDED: 200,
} as const;

export const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k]));

/** Types the server parses as requests (and INIT, which is fatal after the first). */
const REQUEST_TYPES = new Set<number>([1, ...Array.from({ length: 18 }, (_, i) => i + 3), 200]);
const REQUEST_LIST = [...REQUEST_TYPES].filter((t) => t !== 1);
const UNKNOWN_TYPES = Array.from({ length: 256 }, (_, i) => i).filter((t) => !REQUEST_TYPES.has(t));

/** The longest SFTP packet the server accepts (OpenSSH's SFTP_MAX_MSG_LENGTH). */
export const MAX_PACKET = 256 * 1024;

export const EXTENSIONS = [
  'posix-rename@openssh.com', 'statvfs@openssh.com', 'fstatvfs@openssh.com', 'hardlink@openssh.com',
  'fsync@openssh.com', 'lsetstat@openssh.com', 'limits@openssh.com', 'expand-path@openssh.com',
  'copy-data', 'home-directory', 'users-groups-by-id@openssh.com',
] as const;

function u32b(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}
function u64b(v: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, v));
  return b;
}

/** One field of a request body; strings keep their content apart so their length can lie. */
type Field = { s: Buffer } | { raw: Buffer };

export type Expect = 'reply' | 'silent' | 'fatal' | 'desync';

export interface FuzzPacket {
  /** Everything written to the channel, length prefix included. */
  bytes: Buffer;
  /** The request id the reply must carry (expect === 'reply'). */
  id: number | undefined;
  expect: Expect;
  /** Request name before mutation: OPEN, EXT:copy-data, TYPE:37, FRAME, INIT, ... */
  kind: string;
  /** What was done to it: valid, truncate, strlen, trailing, retype, unknown-type, flip, random, frame:... */
  mutation: string;
  /** The request, unmutated, would create a handle of this kind. */
  opens?: 'file' | 'dir';
}

export interface FuzzContext {
  /** Live handles the server returned on this channel. */
  fileHandles: Buffer[];
  dirHandles: Buffer[];
  /** Handles that were closed (or belonged to a channel that is gone). */
  staleHandles: Buffer[];
}

export interface GeneratorOptions {
  /** Host path of the sentinel directory outside the root (for absolute-path escape attempts). */
  outsideHostPath: string;
  /** The fuzz user's name (home-directory, expand-path ~user). */
  user: string;
  /** Probability per packet of broken SFTP framing (default 0.0006). */
  framingRate?: number;
  /** copy-data may ask for "to end of file" (length 0 or huge); default true. */
  copyToEof?: boolean;
}

/** Names in the fixture root (see run.ts) and names the fuzzer creates; "fz" marks ours. */
export const FIXTURE_NAMES = [
  'f1', 'big', 'dir', 'dir/sub', 'dir/f2', 'empty-dir', 'fifo', 'loop', 'dangling',
  'esc-abs-dir', 'esc-abs-file', 'esc-rel', 'esc-rel-dir', 'esc-deep', 'esc-root', 'esc-proc',
  'esc-etc', 'esc-self-fd', 'dir/esc-up',
];
export const FUZZ_NAMES = Array.from({ length: 12 }, (_, i) => `fz${i}`);

export class PacketGenerator {
  readonly rng: Rng;
  readonly #o: GeneratorOptions;
  #id: number;
  readonly #hostile: Buffer[];
  readonly #framingRate: number;

  constructor(seed: number, opts: GeneratorOptions) {
    this.rng = new Rng(seed);
    this.#o = opts;
    this.#framingRate = opts.framingRate ?? 0.0006;
    // Start just below 2^32 so the id wraps through 0xffffffff and 0 early in every run.
    this.#id = 0xffffffff - 200;
    const out = opts.outsideHostPath;
    const b = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
    this.#hostile = [
      b('..'), b('../..'), b('/..'), b('/../../..'), b('../../outside'), b('../../outside/secret'), b('../../../../../../../../etc/passwd'),
      b(out), b(out + '/secret'), b(out + '/dir/secret'), b('/proc/self/root'), b('/proc/self/root/etc/passwd'),
      b('/proc/self/cwd'), b('/proc/self/fd/0'), b('/proc/1/root'), b('/dev/null'), b('/dev/zero'), b('/etc/passwd'), b('/etc'),
      b(''), b('.'), b('/'), b('//'), b('///./.././/'), b('dir/./..//..'), b('dir/sub/../../..'), b('~'), b('~/../..'),
      b('~root'), b('~' + opts.user + '/../..'), b('..\\..\\outside'), b('%2e%2e%2f%2e%2e%2foutside'), b('\u2025/\u2215..\u2215'),
      b('\uff0e\uff0e\uff0f\uff0e\uff0e'), b('dir/' + '../'.repeat(60) + 'outside/secret'), b('esc-rel-dir/secret'),
      b('esc-abs-dir/secret'), b('esc-deep/outside/secret'), b('esc-proc/etc/passwd'), b('dir/esc-up/secret'),
      b('esc-root/' + out.slice(1) + '/secret'), b('loop/x'), b('dangling/x'), b('fifo/x'),
      b('a'.repeat(255)), b('a'.repeat(256)), b('x/'.repeat(2048)), b('x/'.repeat(2048) + 'y'), b('/' + 'a'.repeat(4095)),
      b('f1', [0], '../../outside/secret'), b([0]), b([0, 0, 0]), b('/', [0]),
      b([0xff]), b([0xfe, 0xff]), b([0x80]), b('dir/', [0xbf], '/x'), b([0xc0, 0xae, 0xc0, 0xae, 0xc0, 0xaf, 0xc0, 0xae, 0xc0, 0xae]),
      b([0xc0, 0xaf], 'etc', [0xc0, 0xaf], 'passwd'), b([0xe0, 0x80, 0xae, 0xe0, 0x80, 0xae, 0x2f]), b([0xed, 0xa0, 0x80]),
      b([0xf8, 0x88, 0x80, 0x80, 0x80]), b([0xe2, 0x82]), b('\u202e', 'txt.exe'), b('e\u0301\u0301\u0301'), b('\ufffd'),
      b('\ud83d\ude00'), b([0xf4, 0x90, 0x80, 0x80]),
    ];
  }

  /** A fresh request id (wraps at 2^32). */
  takeId(): number {
    const id = this.#id;
    this.#id = (this.#id + 1) >>> 0;
    return id;
  }

  /** REALPATH "." with a fresh id: the runner's liveness probe. */
  ping(): { bytes: Buffer; id: number } {
    const id = this.takeId();
    return { bytes: frame(T.REALPATH, id, [{ s: Buffer.from('.') }]), id };
  }

  /** The INIT packet for a new channel: usually version 3, sometimes odd versions and extension pairs. */
  init(): { bytes: Buffer; valid: boolean } {
    const r = this.rng;
    if (r.chance(0.7)) return { bytes: frameRaw(Buffer.concat([Buffer.from([T.INIT]), u32b(3)])), valid: true };
    const version = r.pick([0, 1, 2, 3, 4, 5, 6, 0x7fffffff, 0xffffffff]);
    const parts: Buffer[] = [Buffer.from([T.INIT]), u32b(version)];
    const n = r.int(4);
    for (let i = 0; i < n; i++) parts.push(this.#sshString(this.#anyString()), this.#sshString(this.#anyString()));
    let valid = true;
    if (r.chance(0.2)) {
      // An odd half pair: malformed INIT (fatal).
      parts.push(this.#sshString(this.#anyString()));
      valid = false;
    }
    return { bytes: frameRaw(Buffer.concat(parts)), valid };
  }

  /** The next fuzz packet. */
  next(ctx: FuzzContext): FuzzPacket {
    const r = this.rng;
    if (r.chance(this.#framingRate)) return this.#badFraming(ctx);
    if (r.chance(0.0002)) return { bytes: this.init().bytes, id: undefined, expect: 'fatal', kind: 'INIT', mutation: 'duplicate-init' };

    const good = r.chance(0.12);
    const { type, kind, fields, opens } = good ? this.#goodRequest(ctx) : this.#request(ctx);
    const mutation = good ? 'good' : r.weighted<string>([
      // short-id is fatal (no id to answer): rare, each one costs a channel.
      [4000, 'valid'], [1200, 'truncate'], [1200, 'strlen'], [800, 'trailing'], [500, 'retype'], [500, 'unknown-type'],
      [600, 'flip'], [300, 'random'], [5, 'short-id'],
    ]);
    let payload: Buffer;
    const id = this.takeId();
    switch (mutation) {
      case 'valid':
      case 'good':
        payload = body(type, id, fields);
        break;
      case 'strlen': {
        const strs = fields.filter((f): f is { s: Buffer } => 's' in f);
        if (strs.length === 0) {
          payload = body(type, id, fields);
          break;
        }
        const target = r.pick(strs);
        const len = target.s.length;
        const lie = r.pick([0xffffffff, 0xfffffffe, 0x80000000, 0x7fffffff, MAX_PACKET, len + 1, len + 4, len + r.int(64), Math.max(0, len - 1), 0]);
        payload = body(type, id, fields, new Map([[target, lie >>> 0]]));
        break;
      }
      case 'truncate': {
        const full = body(type, id, fields);
        // Mostly past the id (per-field parsers), rarely inside it (fatal).
        const cut = full.length > 5 ? r.range(5, full.length - 1) : full.length;
        payload = full.subarray(0, cut);
        break;
      }
      case 'short-id': {
        const full = body(type, id, fields);
        payload = full.subarray(0, r.range(1, 4));
        break;
      }
      case 'trailing':
        payload = Buffer.concat([body(type, id, fields), r.chance(0.5) ? r.bytes(r.range(1, 16)) : r.bytes(r.size(8192))]);
        break;
      case 'retype':
        payload = body(r.pick(REQUEST_LIST), id, fields);
        break;
      case 'unknown-type': {
        const full = body(r.pick(UNKNOWN_TYPES), id, fields);
        payload = r.chance(0.1) ? full.subarray(0, r.range(1, 4)) : full;
        break;
      }
      case 'flip': {
        payload = Buffer.from(body(type, id, fields));
        const n = r.range(1, 4);
        for (let i = 0; i < n && payload.length > 5; i++) payload[r.range(5, payload.length - 1)] = r.int(256);
        break;
      }
      default: // random
        payload = Buffer.concat([Buffer.from([type]), u32b(id), r.bytes(r.size(1024))]);
    }
    if (payload.length > MAX_PACKET) payload = payload.subarray(0, MAX_PACKET);
    const expect = classify(payload);
    const p: FuzzPacket = { bytes: frameRaw(payload), id: expect === 'reply' ? id : undefined, expect, kind, mutation };
    if (opens && (mutation === 'valid' || mutation === 'good')) p.opens = opens;
    return p;
  }

  // ------------------------------------------------------------------------------- framing

  #badFraming(ctx: FuzzContext): FuzzPacket {
    const r = this.rng;
    const { type, fields } = this.#request(ctx);
    const payload = body(type, this.takeId(), fields);
    const how = r.pick(['zero', 'over', 'over-big', 'negative', 'max', 'short', 'long'] as const);
    let len: number;
    let expect: Expect = 'fatal';
    switch (how) {
      case 'zero':
        len = 0;
        break;
      case 'over':
        len = MAX_PACKET + 1 + r.int(1024);
        break;
      case 'over-big':
        len = r.range(MAX_PACKET + 1, 0x7fffffff);
        break;
      case 'negative':
        len = 0x80000000 + r.int(0x7fffffff);
        break;
      case 'max':
        len = 0xffffffff;
        break;
      case 'short':
        len = Math.max(1, payload.length - r.range(1, Math.max(1, payload.length - 1)));
        expect = 'desync';
        break;
      default: // long: the server waits for bytes that never come
        len = Math.min(MAX_PACKET, payload.length + r.range(1, 4096));
        expect = 'desync';
    }
    return { bytes: Buffer.concat([u32b(len), payload]), id: undefined, expect, kind: 'FRAME', mutation: `frame:${how}` };
  }

  // ------------------------------------------------------------------------------- requests

  #request(ctx: FuzzContext): { type: number; kind: string; fields: Field[]; opens?: 'file' | 'dir' } {
    const r = this.rng;
    const type = r.weighted<number>([
      [7, T.OPEN], [3, T.CLOSE], [6, T.READ], [6, T.WRITE], [3, T.LSTAT], [3, T.FSTAT], [4, T.SETSTAT], [4, T.FSETSTAT],
      [4, T.OPENDIR], [4, T.READDIR], [3, T.REMOVE], [3, T.MKDIR], [3, T.RMDIR], [3, T.REALPATH], [3, T.STAT],
      [3, T.RENAME], [3, T.READLINK], [3, T.SYMLINK], [22, T.EXTENDED],
    ]);
    const path = (): Field => ({ s: this.#path() });
    const handle = (kind: 'file' | 'dir' = 'file'): Field => ({ s: this.#handle(ctx, kind) });
    const attrs = (): Field => ({ raw: this.#attrs() });
    const name = TYPE_NAMES[type]!;
    switch (type) {
      case T.OPEN:
        // Often a plain open of a real file, so live handles keep flowing (READ, WRITE, copy-data...).
        if (r.chance(0.4)) return { type, kind: name, fields: [{ s: this.#goodPath('file') }, { raw: u32b(r.pick([0x01, 0x01, 0x03, 0x0b, 0x1a, 0x0e])) }, { raw: u32b(0) }], opens: 'file' };
        return { type, kind: name, fields: [path(), { raw: u32b(this.#pflags()) }, attrs()], opens: 'file' };
      case T.CLOSE: {
        // Mostly close a live handle (keeps the session under its handle cap).
        const live = ctx.fileHandles.length + ctx.dirHandles.length;
        if (live > 0 && r.chance(0.7)) {
          const fromFiles = ctx.dirHandles.length === 0 || (ctx.fileHandles.length > 0 && r.chance(0.6));
          const list = fromFiles ? ctx.fileHandles : ctx.dirHandles;
          const h = list.splice(r.int(list.length), 1)[0]!;
          retire(ctx, h);
          return { type, kind: name, fields: [{ s: h }] };
        }
        return { type, kind: name, fields: [handle(r.chance(0.5) ? 'file' : 'dir')] };
      }
      case T.READ:
        return { type, kind: name, fields: [handle(), { raw: u64b(this.#readOffset()) }, { raw: u32b(this.#u32len()) }] };
      case T.WRITE:
        return { type, kind: name, fields: [handle(), { raw: u64b(this.#writeOffset()) }, { s: this.#data() }] };
      case T.LSTAT:
      case T.STAT:
      case T.REMOVE:
      case T.RMDIR:
      case T.REALPATH:
      case T.READLINK:
        return { type, kind: name, fields: [path()] };
      case T.OPENDIR:
        return { type, kind: name, fields: [r.chance(0.4) ? { s: this.#goodPath('dir') } : path()], opens: 'dir' };
      case T.FSTAT:
        return { type, kind: name, fields: [handle()] };
      case T.READDIR:
        return { type, kind: name, fields: [handle('dir')] };
      case T.SETSTAT:
      case T.MKDIR:
        return { type, kind: name, fields: [path(), attrs()] };
      case T.FSETSTAT:
        return { type, kind: name, fields: [handle(), attrs()] };
      case T.RENAME:
        return { type, kind: name, fields: [path(), path()] };
      case T.SYMLINK:
        return { type, kind: name, fields: [path(), { s: this.#symlinkTarget() }] };
      default:
        return this.#extended(ctx);
    }
  }

  /** Interleaved valid traffic: well-formed requests on live handles and real names. */
  #goodRequest(ctx: FuzzContext): { type: number; kind: string; fields: Field[]; opens?: 'file' | 'dir' } {
    const r = this.rng;
    const file = ctx.fileHandles.length ? r.pick(ctx.fileHandles) : undefined;
    const dir = ctx.dirHandles.length ? r.pick(ctx.dirHandles) : undefined;
    const what = r.int(12);
    const s = (b: Buffer | string): Field => ({ s: typeof b === 'string' ? Buffer.from(b) : b });
    if (file && what < 4) return { type: T.READ, kind: 'READ', fields: [s(file), { raw: u64b(BigInt(r.chance(0.5) ? 0 : r.int(300 * 1024))) }, { raw: u32b(r.pick([4096, 32768, 261120])) }] };
    if (file && what < 6) return { type: T.WRITE, kind: 'WRITE', fields: [s(file), { raw: u64b(BigInt(r.int(64 * 1024))) }, s(r.bytes(r.size(32 * 1024)))] };
    if (file && what === 6) return { type: T.FSTAT, kind: 'FSTAT', fields: [s(file)] };
    if (dir && what === 7) return { type: T.READDIR, kind: 'READDIR', fields: [s(dir)] };
    if (file && what === 8 && ctx.fileHandles.length > 1) {
      const dst = r.pick(ctx.fileHandles);
      return { type: T.EXTENDED, kind: 'EXT:copy-data', fields: [s('copy-data'), s(file), { raw: u64b(0n) }, { raw: u64b(BigInt(r.size(64 * 1024))) }, s(dst), { raw: u64b(BigInt(r.int(4096))) }] };
    }
    if (what === 9) return { type: T.STAT, kind: 'STAT', fields: [s(this.#goodPath(r.chance(0.5) ? 'file' : 'dir'))] };
    if (what === 10 || !dir) return { type: T.OPENDIR, kind: 'OPENDIR', fields: [s(this.#goodPath('dir'))], opens: 'dir' };
    return { type: T.OPEN, kind: 'OPEN', fields: [s(this.#goodPath('file')), { raw: u32b(r.pick([0x01, 0x03, 0x0b, 0x09])) }, { raw: u32b(0) }], opens: 'file' };
  }

  #extended(ctx: FuzzContext): { type: number; kind: string; fields: Field[] } {
    const r = this.rng;
    const known = r.chance(0.85);
    // fsync is rarer: a slow disk holds up every later reply (replies leave in request order).
    const ext = known ? r.weighted(EXTENSIONS.map((e) => [e === 'fsync@openssh.com' ? 2 : 10, e] as const)) : '';
    const nameBuf = known ? Buffer.from(r.chance(0.1) ? ext.replace(/@openssh\.com$/, '') : ext) : this.#extName();
    const path = (): Field => ({ s: this.#path() });
    const handle = (kind: 'file' | 'dir' = 'file'): Field => ({ s: this.#handle(ctx, kind) });
    const u64 = (v: bigint): Field => ({ raw: u64b(v) });
    let fields: Field[];
    switch (ext) {
      case 'posix-rename@openssh.com':
      case 'hardlink@openssh.com':
        fields = [path(), path()];
        break;
      case 'statvfs@openssh.com':
        fields = [path()];
        break;
      case 'fstatvfs@openssh.com':
      case 'fsync@openssh.com':
        fields = [handle()];
        break;
      case 'lsetstat@openssh.com':
        fields = [path(), { raw: this.#attrs() }];
        break;
      case 'limits@openssh.com':
        fields = r.chance(0.8) ? [] : [{ raw: r.bytes(r.size(64)) }];
        break;
      case 'expand-path@openssh.com':
        fields = [{ s: r.chance(0.4) ? this.#tilde() : this.#path() }];
        break;
      case 'copy-data':
        fields = [handle(), u64(this.#readOffset()), u64(this.#copyLength()), handle(), u64(this.#writeOffset())];
        break;
      case 'home-directory':
        fields = [{ s: r.chance(0.5) ? Buffer.from(r.pick(['', this.#o.user, 'root', 'bystander', this.#o.user + '\0'])) : this.#anyString() }];
        break;
      case 'users-groups-by-id@openssh.com':
        fields = [{ s: this.#idList() }, { s: this.#idList() }];
        break;
      default:
        fields = r.chance(0.5) ? [] : [{ raw: r.bytes(r.size(256)) }];
    }
    return { type: T.EXTENDED, kind: known ? `EXT:${ext}` : 'EXT:unknown', fields: [{ s: nameBuf }, ...fields] };
  }

  // ------------------------------------------------------------------------------- values

  #path(): Buffer {
    const r = this.rng;
    let p: Buffer;
    const what = r.int(10);
    if (what < 3) {
      p = this.#hostile[r.int(this.#hostile.length)]!;
    } else {
      const n = r.range(1, 3);
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(r.chance(0.55) ? r.pick(FUZZ_NAMES) : r.chance(0.8) ? r.pick(FIXTURE_NAMES) : r.pick(['..', '.', '']));
      const s = parts.join('/');
      p = Buffer.from(r.chance(0.5) ? '/' + s : s);
    }
    if (r.chance(0.08)) p = this.#corrupt(p);
    return p;
  }

  /** A path that usually names an existing file or directory in the fixture root. */
  #goodPath(kind: 'file' | 'dir'): Buffer {
    const r = this.rng;
    const files = ['f1', 'big', 'dir/f2', '/f1', '/big', ...FUZZ_NAMES];
    const dirs = ['/', '.', '', 'dir', '/dir/sub', 'empty-dir', 'esc-root', 'esc-abs-dir', 'esc-rel-dir', 'esc-deep', 'dir/esc-up', ...FUZZ_NAMES];
    return Buffer.from(r.pick(kind === 'file' ? files : dirs));
  }

  #symlinkTarget(): Buffer {
    const r = this.rng;
    const out = this.#o.outsideHostPath;
    if (r.chance(0.4)) return Buffer.from(r.pick([out, out + '/secret', '../../outside', '../../outside/secret', '/', '/etc', '/proc/self/root', '..', '../'.repeat(40), 'fz1', '/fz2', 'esc-rel', 'loop']));
    return this.#path();
  }

  #tilde(): Buffer {
    const r = this.rng;
    return Buffer.from(r.pick(['~', '~/', '~/..', '~/../..', '~/fz1', `~${this.#o.user}`, `~${this.#o.user}/..`, '~root', '~root/..', '~bystander', '~bystander/x', '~/' + '../'.repeat(10) + 'etc', `~${this.#o.user}\0x`]));
  }

  /** NUL or invalid UTF-8 somewhere in `p`. */
  #corrupt(p: Buffer): Buffer {
    const r = this.rng;
    const junk = r.pick([[0], [0xff], [0xfe], [0x80], [0xbf], [0xc0, 0xae], [0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0xae], [0xed, 0xb0, 0x80], [0xf0, 0x80, 0x80, 0xaf], [0xc3], [0xe2, 0x82]]);
    const at = r.int(p.length + 1);
    return Buffer.concat([p.subarray(0, at), Buffer.from(junk), p.subarray(at)]);
  }

  #anyString(): Buffer {
    const r = this.rng;
    switch (r.int(5)) {
      case 0:
        return Buffer.alloc(0);
      case 1:
        return r.bytes(r.size(64));
      case 2:
        return this.#corrupt(Buffer.from(r.pick(['a', 'posix-rename@openssh.com', 'x'.repeat(300), '__proto__', 'constructor'])));
      case 3:
        return Buffer.from(r.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'limits@openssh.com']));
      default:
        return r.bytes(r.size(4096));
    }
  }

  #extName(): Buffer {
    const r = this.rng;
    return r.chance(0.5)
      ? Buffer.from(r.pick(['', 'posix-rename@openssh.co', 'POSIX-RENAME@OPENSSH.COM', 'statvfs@openssh.com\0', 'limits@openssh.com@openssh.com', '@openssh.com', 'check-file-name', 'space-available', 'copy-file', 'fsync', '__proto__', 'constructor', 'toString', 'x'.repeat(70000)]))
      : this.#anyString();
  }

  #handle(ctx: FuzzContext, kind: 'file' | 'dir'): Buffer {
    const r = this.rng;
    const own = kind === 'file' ? ctx.fileHandles : ctx.dirHandles;
    const other = kind === 'file' ? ctx.dirHandles : ctx.fileHandles;
    const x = r.int(100);
    if (x < 55 && own.length) return r.pick(own);
    if (x < 63 && other.length) return r.pick(other);
    if (x < 71 && ctx.staleHandles.length) return r.pick(ctx.staleHandles);
    if (x < 75 && own.length) {
      const h = r.pick(own);
      // Near misses: one byte off, one byte short or long, the hex text of the handle.
      switch (r.int(4)) {
        case 0: {
          const c = Buffer.from(h);
          const at = r.int(c.length);
          c[at] = (c[at] ?? 0) ^ (1 << r.int(8));
          return c;
        }
        case 1:
          return h.subarray(0, h.length - 1);
        case 2:
          return Buffer.concat([h, Buffer.from([0])]);
        default:
          return Buffer.from(h.toString('hex'));
      }
    }
    return r.pick([
      () => Buffer.alloc(0), () => r.bytes(16), () => r.bytes(4), () => r.bytes(256), () => r.bytes(257), () => r.bytes(r.size(1024)),
      () => Buffer.from('/f1'), () => Buffer.from('0'), () => Buffer.alloc(16), () => Buffer.from('__proto__'),
    ])();
  }

  #pflags(): number {
    const r = this.rng;
    if (r.chance(0.1)) return r.u32();
    // Every combination of the six defined bits; read-only opens are the most common real case.
    return r.chance(0.3) ? 0x01 : r.int(64);
  }

  /** ATTRS: any combination of the four v3 flags, sometimes EXTENDED (0x80000000) or undefined bits. */
  #attrs(): Buffer {
    const r = this.rng;
    let flags = r.int(16);
    const ext = r.chance(0.25);
    if (ext) flags |= 0x80000000;
    if (r.chance(0.05)) flags |= r.u32() & 0x7ffffff0;
    const parts: Buffer[] = [u32b(flags)];
    if (flags & 1) parts.push(u64b(this.#size()));
    if (flags & 2) parts.push(u32b(r.chance(0.7) ? (process.getuid?.() ?? 0) : r.pick([0, 1, 65534, 0xffffffff, r.u32()])), u32b(r.chance(0.7) ? (process.getgid?.() ?? 0) : r.pick([0, 1, 65534, 0xffffffff, r.u32()])));
    if (flags & 4) parts.push(u32b(r.pick([0o644, 0o755, 0o777, 0o4777, 0o2755, 0o1777, 0o7777, 0o000, 0o100644, 0o040755, 0o120777, 0o020666, 0xffffffff, r.u32()])));
    if (flags & 8) parts.push(u32b(r.pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 1_234_567_890, r.u32()])), u32b(r.pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 1_234_567_890, r.u32()])));
    if (ext) {
      const n = r.int(4);
      const claimed = r.chance(0.3) ? r.pick([0xffffffff, 0x7fffffff, n + 1, n + 100, 1_000_000]) : n;
      parts.push(u32b(claimed));
      for (let i = 0; i < n; i++) parts.push(this.#sshString(this.#anyString()), this.#sshString(r.chance(0.1) ? r.bytes(r.size(65536)) : this.#anyString()));
      if (r.chance(0.1)) parts.push(u32b(0xffffffff));
    }
    return Buffer.concat(parts);
  }

  /**
   * Sizes and write offsets: small, or past ext4's 16 TiB file limit, or past 2^53. Never in
   * between: a sparse file of terabytes plus copy-data ("to end of file") would fill the host disk.
   */
  #size(): bigint {
    const r = this.rng;
    return r.weighted<() => bigint>([
      [6, () => BigInt(r.size(1 << 20))],
      [1, () => BigInt(r.pick([0, 1, 4095, 4096, 65536, 1 << 20]))],
      [1, () => r.pick([2n ** 45n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n])],
    ])();
  }
  #writeOffset(): bigint {
    return this.#size();
  }
  /** Reads may go anywhere: add the 32-bit boundaries. */
  #readOffset(): bigint {
    const r = this.rng;
    if (r.chance(0.3)) return 0n;
    if (r.chance(0.3)) return BigInt(r.int(300 * 1024));
    if (r.chance(0.15)) return r.pick([2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n, 2n ** 44n]);
    return this.#size();
  }
  #copyLength(): bigint {
    const r = this.rng;
    if (this.#o.copyToEof === false) return BigInt(r.range(1, 1 << 20));
    return r.chance(0.3) ? 0n : r.chance(0.8) ? BigInt(r.size(1 << 20)) : r.pick([2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n]);
  }
  #u32len(): number {
    const r = this.rng;
    return r.chance(0.7) ? r.size(1 << 18) : r.pick([0, 1, 261120, 261121, 262144, 0x7fffffff, 0x80000000, 0xffffffff]);
  }
  #data(): Buffer {
    const r = this.rng;
    return r.chance(0.97) ? r.bytes(r.size(8192)) : r.bytes(r.range(65536, MAX_PACKET - 64));
  }
  /** users-groups-by-id lists: multiples of 4 (sometimes huge), or not. */
  #idList(): Buffer {
    const r = this.rng;
    const me = process.getuid?.() ?? 0;
    switch (r.chance(0.03) ? 2 : r.pick([0, 1, 3])) {
      case 0:
        return Buffer.alloc(0);
      case 1:
        return r.bytes(r.range(1, 3) + 4 * r.int(4));
      case 2: {
        // Very many ids (up to 32k): the reply is a name per id.
        const n = r.range(1000, 32000);
        const b = Buffer.alloc(4 * n);
        for (let i = 0; i < n; i++) b.writeUInt32BE(i % 7 === 0 ? me : i, 4 * i);
        return b;
      }
      default: {
        const n = r.range(1, 8);
        const b = Buffer.alloc(4 * n);
        for (let i = 0; i < n; i++) b.writeUInt32BE(r.chance(0.5) ? me : r.pick([0, 1, 65534, 0xffffffff, r.u32()]), 4 * i);
        return b;
      }
    }
  }

  #sshString(b: Buffer): Buffer {
    return Buffer.concat([u32b(b.length), b]);
  }
}

/** Moves a handle to the stale list (bounded). */
export function retire(ctx: FuzzContext, h: Buffer): void {
  ctx.staleHandles.push(h);
  if (ctx.staleHandles.length > 16) ctx.staleHandles.shift();
}

/** type, id, then the fields; `lies` overrides the length prefix of some string fields. */
function body(type: number, id: number, fields: Field[], lies?: Map<Field, number>): Buffer {
  const parts: Buffer[] = [Buffer.from([type]), u32b(id)];
  for (const f of fields) {
    if ('raw' in f) parts.push(f.raw);
    else parts.push(u32b(lies?.get(f) ?? f.s.length), f.s);
  }
  return Buffer.concat(parts);
}

function frame(type: number, id: number, fields: Field[]): Buffer {
  return frameRaw(body(type, id, fields));
}

/** A correct length prefix around `payload` (type byte first). */
export function frameRaw(payload: Buffer): Buffer {
  return Buffer.concat([u32b(payload.length), payload]);
}

/** What the server owes a well-framed payload (see the file comment). */
export function classify(payload: Buffer): Expect {
  if (payload.length === 0) return 'fatal';
  const type = payload[0]!;
  if (type === T.INIT) return 'fatal';
  if (payload.length >= 5) return 'reply';
  return REQUEST_TYPES.has(type) ? 'fatal' : 'silent';
}
