/** Attribute conversions: stats → SFTP ATTRS, `ls -l` longnames, and the wire reader for extensions. */
import { decodeName } from './names.js';
import type { FileStat, SetAttrs } from '../fs/file-system.js';
import { SftpStatusError } from '../errors.js';

/** The SFTP v3 ATTRS fields: the part of a stat that goes on the wire. */
export type WireAttrs = Pick<FileStat, 'mode' | 'uid' | 'gid' | 'size' | 'atime' | 'mtime'>;

export function toWire(s: FileStat): WireAttrs {
  return { mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, atime: s.atime, mtime: s.mtime };
}

/** ssh2 sets only the fields the client flagged; keep exactly those. */
export function fromClient(a: Partial<WireAttrs> | undefined): SetAttrs {
  const out: SetAttrs = {};
  if (!a) return out;
  if (typeof a.mode === 'number') out.mode = a.mode;
  if (typeof a.uid === 'number') out.uid = a.uid;
  if (typeof a.gid === 'number') out.gid = a.gid;
  if (typeof a.size === 'number') out.size = a.size;
  if (typeof a.atime === 'number') out.atime = a.atime;
  if (typeof a.mtime === 'number') out.mtime = a.mtime;
  return out;
}

const TYPE_CHAR: Record<number, string> = { 0o140000: 's', 0o120000: 'l', 0o100000: '-', 0o060000: 'b', 0o040000: 'd', 0o020000: 'c', 0o010000: 'p' };

export function modeString(mode: number): string {
  const t = TYPE_CHAR[mode & 0o170000] ?? '?';
  const rwx = (bits: number, special: boolean, ch: string) =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return (
    t +
    rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') +
    rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') +
    rwx(mode & 7, (mode & 0o1000) !== 0, 't')
  );
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `ls -l` style line as OpenSSH's ls_file() builds it. */
export function longname(name: string, s: FileStat, owner: (uid: number) => string, group: (gid: number) => string, now = Date.now()): string {
  const d = new Date(s.mtime * 1000);
  const sixMonths = 182 * 24 * 3600 * 1000;
  const recent = Math.abs(now - d.getTime()) < sixMonths;
  const day = String(d.getDate()).padStart(2, ' ');
  const when = recent
    ? `${MONTHS[d.getMonth()]} ${day} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
    : `${MONTHS[d.getMonth()]} ${day}  ${d.getFullYear()}`;
  const u = owner(s.uid).slice(0, 8).padEnd(8, ' ');
  const g = group(s.gid).slice(0, 8).padEnd(8, ' ');
  return `${modeString(s.mode)} ${String(s.nlink).padStart(3, ' ')} ${u} ${g} ${String(s.size).padStart(8, ' ')} ${when} ${name}`;
}

/** Bounds-checked reader for EXTENDED request payloads; a short payload is BAD_MESSAGE. */
export class WireReader {
  #p = 0;
  constructor(readonly buf: Buffer) {}
  #need(n: number): void {
    if (this.#p + n > this.buf.length) throw new SftpStatusError('BAD_MESSAGE', undefined, 'truncated extended request');
  }
  u32(): number {
    this.#need(4);
    const v = this.buf.readUInt32BE(this.#p);
    this.#p += 4;
    return v;
  }
  u64(): number {
    this.#need(8);
    const v = this.buf.readBigUInt64BE(this.#p);
    this.#p += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SftpStatusError('BAD_MESSAGE', undefined, 'uint64 beyond 2^53');
    return Number(v);
  }
  bytes(): Buffer {
    const n = this.u32();
    this.#need(n);
    const b = this.buf.subarray(this.#p, this.#p + n);
    this.#p += n;
    return b;
  }
  string(): string {
    return this.bytes().toString('utf8');
  }
  /** A path or file name: its bytes kept exactly (names.ts). */
  name(): string {
    return decodeName(this.bytes());
  }
  /** SFTP v3 ATTRS (draft-02 §5). */
  attrs(): SetAttrs {
    const flags = this.u32();
    const out: SetAttrs = {};
    if (flags & 0x1) out.size = this.u64();
    if (flags & 0x2) {
      out.uid = this.u32();
      out.gid = this.u32();
    }
    if (flags & 0x4) out.mode = this.u32();
    if (flags & 0x8) {
      out.atime = this.u32();
      out.mtime = this.u32();
    }
    if (flags & 0x80000000) {
      const count = this.u32();
      for (let i = 0; i < count; i++) {
        this.bytes();
        this.bytes();
      }
    }
    return out;
  }
}

/** Builds EXTENDED_REPLY payloads. */
export class WireWriter {
  #parts: Buffer[] = [];
  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v >>> 0);
    this.#parts.push(b);
    return this;
  }
  u64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(v))));
    this.#parts.push(b);
    return this;
  }
  string(s: string | Buffer): this {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    this.u32(b.length);
    this.#parts.push(b);
    return this;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.#parts);
  }
}
