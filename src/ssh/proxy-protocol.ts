/**
 * PROXY protocol (HAProxy's spec, versions 1 and 2) on the receiving side: reads the header a load
 * balancer puts in front of the client's bytes and returns the client's real address.
 *
 * The header is read in paused mode (`'readable'` + `socket.read()`), never through `'data'`, so no
 * byte can reach a `'data'` listener before the header is gone. Whatever arrives after the header
 * (typically the client's "SSH-2.0-…" line, often in the same TCP segment) is pushed back with
 * `socket.unshift()`; the SSH layer then sees the stream exactly as the client sent it.
 *
 * Memory is bounded: a decision is taken as soon as the bytes seen can no longer start a header, or
 * once a complete header (v1: at most 107 bytes; v2: 16 + length, length ≤ MAX_V2_LENGTH) has been
 * seen. Bytes are only ever held up to that bound plus one socket chunk, and the socket's own
 * buffer applies back-pressure meanwhile.
 */
import { isIP, type Socket } from 'node:net';

export type ProxyMode = 'off' | 'optional' | 'required';

export interface ProxySource {
  ip: string;
  port: number;
}

export class ProxyProtocolError extends Error {
  override readonly name = 'ProxyProtocolError';
  readonly code = 'PROXY_PROTOCOL';
}

/** The v2 signature: "\r\n\r\n\0\r\nQUIT\n". */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1');
/** v1 line, "PROXY" to CRLF included (spec: 107 bytes for the worst case, TCP6 with full addresses). */
export const V1_MAX_LENGTH = 107;
/** Largest v2 payload accepted: the biggest address block (AF_UNIX, 216 bytes) plus 1 KiB of TLVs. */
export const MAX_V2_LENGTH = 216 + 1024;
const V2_HEADER = 16;

export type ProxyParseResult =
  /** Need more bytes. */
  | { kind: 'more' }
  /** Not a PROXY header at all (the bytes belong to the next protocol). */
  | { kind: 'absent' }
  | { kind: 'error'; message: string }
  | { kind: 'done'; length: number; source: ProxySource | null };

/** True when `buf` is a prefix of `sig` (or equal to it, or longer and starting with it). */
function matchesSignature(buf: Buffer, sig: Buffer): 'no' | 'prefix' | 'full' {
  const n = Math.min(buf.length, sig.length);
  if (buf.subarray(0, n).compare(sig, 0, n) !== 0) return 'no';
  return buf.length >= sig.length ? 'full' : 'prefix';
}

const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

function parsePort(s: string): number | null {
  if (!PORT.test(s)) return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

function parseV1(buf: Buffer): ProxyParseResult {
  // Look for CRLF within the first V1_MAX_LENGTH bytes only.
  const limit = Math.min(buf.length, V1_MAX_LENGTH);
  let lf = -1;
  for (let i = 0; i < limit; i++) {
    const b = buf[i]!;
    if (b === 0x0a) {
      lf = i;
      break;
    }
    // Only printable US-ASCII, spaces and the terminating CR may appear.
    if (b === 0x0d) {
      if (i + 1 < buf.length && buf[i + 1] !== 0x0a) return { kind: 'error', message: 'PROXY v1 header: CR not followed by LF' };
      continue;
    }
    if (b < 0x20 || b > 0x7e) return { kind: 'error', message: `PROXY v1 header: invalid byte 0x${b.toString(16).padStart(2, '0')}` };
  }
  if (lf === -1) {
    if (buf.length >= V1_MAX_LENGTH) return { kind: 'error', message: `PROXY v1 header: no CRLF within ${V1_MAX_LENGTH} bytes` };
    return { kind: 'more' };
  }
  if (lf === 0 || buf[lf - 1] !== 0x0d) return { kind: 'error', message: 'PROXY v1 header: line not terminated by CRLF' };
  const line = buf.toString('latin1', 0, lf - 1);
  const length = lf + 1;
  const fields = line.split(' ');
  // fields[0] is "PROXY" (the signature was matched with its space).
  const proto = fields[1];
  if (proto === 'UNKNOWN') {
    // The spec lets a sender put anything (or nothing) after UNKNOWN; the receiver ignores it.
    return { kind: 'done', length, source: null };
  }
  if (proto !== 'TCP4' && proto !== 'TCP6') return { kind: 'error', message: `PROXY v1 header: unsupported protocol ${JSON.stringify(proto ?? '')}` };
  if (fields.length !== 6) return { kind: 'error', message: 'PROXY v1 header: expected "PROXY TCP4|TCP6 src dst sport dport" separated by single spaces' };
  const [, , src, dst, sport, dport] = fields as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : 6;
  if (isIP(src) !== family) return { kind: 'error', message: `PROXY v1 header: bad ${proto} source address ${JSON.stringify(src)}` };
  if (isIP(dst) !== family) return { kind: 'error', message: `PROXY v1 header: bad ${proto} destination address ${JSON.stringify(dst)}` };
  const sp = parsePort(sport);
  if (sp === null) return { kind: 'error', message: `PROXY v1 header: bad source port ${JSON.stringify(sport)}` };
  if (parsePort(dport) === null) return { kind: 'error', message: `PROXY v1 header: bad destination port ${JSON.stringify(dport)}` };
  return { kind: 'done', length, source: { ip: src, port: sp } };
}

function ipv6At(buf: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + i * 2).toString(16));
  // Canonical form (RFC 5952): compress the longest run (≥ 2) of zero groups, the first if tied.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  // An IPv4-mapped address keeps its dotted tail, as addresses are usually written (::ffff:1.2.3.4).
  if (best === 0 && bestLen === 5 && groups[5] === 'ffff') {
    return `::ffff:${buf[offset + 12]}.${buf[offset + 13]}.${buf[offset + 14]}.${buf[offset + 15]}`;
  }
  if (best === -1) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function parseV2(buf: Buffer): ProxyParseResult {
  if (buf.length < V2_HEADER) return { kind: 'more' };
  const verCmd = buf[12]!;
  const famProto = buf[13]!;
  const length = buf.readUInt16BE(14);
  if (verCmd >> 4 !== 0x2) return { kind: 'error', message: `PROXY v2 header: unsupported version ${verCmd >> 4}` };
  const command = verCmd & 0x0f;
  if (command !== 0x0 && command !== 0x1) return { kind: 'error', message: `PROXY v2 header: unknown command ${command}` };
  if (length > MAX_V2_LENGTH) return { kind: 'error', message: `PROXY v2 header: length ${length} exceeds ${MAX_V2_LENGTH}` };
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (family > 3 || transport > 2) return { kind: 'error', message: `PROXY v2 header: invalid address family/protocol byte 0x${famProto.toString(16).padStart(2, '0')}` };
  if (buf.length < V2_HEADER + length) return { kind: 'more' };
  const total = V2_HEADER + length;
  // LOCAL: the proxy speaking for itself (health checks): use the connection's own address.
  if (command === 0x0) return { kind: 'done', length: total, source: null };
  // PROXY with AF_UNSPEC: the spec says to accept and use the real connection endpoints.
  if (family === 0x0) return { kind: 'done', length: total, source: null };
  if (transport !== 0x1) return { kind: 'error', message: 'PROXY v2 header: only STREAM (TCP) connections are supported' };
  if (family === 0x3) return { kind: 'error', message: 'PROXY v2 header: AF_UNIX sources are not supported' };
  const addrLen = family === 0x1 ? 12 : 36;
  if (length < addrLen) return { kind: 'error', message: `PROXY v2 header: length ${length} too short for the ${family === 0x1 ? 'IPv4' : 'IPv6'} address block` };
  const body = V2_HEADER;
  let ip: string;
  let port: number;
  if (family === 0x1) {
    ip = `${buf[body]}.${buf[body + 1]}.${buf[body + 2]}.${buf[body + 3]}`;
    port = buf.readUInt16BE(body + 8);
  } else {
    ip = ipv6At(buf, body);
    port = buf.readUInt16BE(body + 32);
  }
  // TLVs: skipped, but they must tile the rest of the header exactly.
  let off = body + addrLen;
  while (off < total) {
    if (off + 3 > total) return { kind: 'error', message: 'PROXY v2 header: truncated TLV' };
    const tlvLen = buf.readUInt16BE(off + 1);
    off += 3 + tlvLen;
    if (off > total) return { kind: 'error', message: 'PROXY v2 header: TLV overruns the header' };
  }
  return { kind: 'done', length: total, source: { ip, port } };
}

/** Parses the start of `buf`. Exported for unit tests; sockets go through readProxyHeader. */
export function parseProxyHeader(buf: Buffer): ProxyParseResult {
  if (buf.length === 0) return { kind: 'more' };
  const v2 = matchesSignature(buf, V2_SIGNATURE);
  if (v2 === 'full') return parseV2(buf);
  const v1 = matchesSignature(buf, V1_SIGNATURE);
  if (v1 === 'full') return parseV1(buf);
  if (v1 === 'prefix' || v2 === 'prefix') return { kind: 'more' };
  return { kind: 'absent' };
}

/**
 * Reads a PROXY header at the start of `socket` (v1 "PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\n",
 * "PROXY UNKNOWN\r\n", or the v2 12-byte signature with LOCAL/PROXY commands, AF_INET/AF_INET6 over
 * STREAM, TLVs skipped). Any bytes after the header are pushed back with socket.unshift().
 *
 * - mode 'optional': if the first bytes are not a PROXY signature (e.g. "SSH-2.0-"), resolves null
 *   and unshifts everything read.
 * - mode 'required': a missing or malformed header rejects with ProxyProtocolError.
 * - v2 LOCAL, v2 AF_UNSPEC and v1 UNKNOWN resolve null (use the socket's own address).
 * - No complete header within `timeoutMs`, or the socket ending or failing first, rejects with
 *   ProxyProtocolError. The caller destroys the socket on rejection.
 *
 * Call it before anything attaches a 'data' listener to the socket (and before handing the socket
 * to ssh2); it leaves the socket with no listeners of its own once settled.
 */
export function readProxyHeader(socket: Socket, opts: { mode: Exclude<ProxyMode, 'off'>; timeoutMs: number }): Promise<ProxySource | null> {
  return new Promise<ProxySource | null>((resolve, reject) => new HeaderRead(socket, opts, resolve, reject).start());
}

/** One header read: what arrives is buffered until the header is decided, then the rest goes back to the socket. */
class HeaderRead {
  #buf: Buffer = Buffer.alloc(0);
  #settled = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    readonly opts: { mode: Exclude<ProxyMode, 'off'>; timeoutMs: number },
    readonly resolve: (source: ProxySource | null) => void,
    readonly reject: (err: ProxyProtocolError) => void,
  ) {}

  start(): void {
    const { socket, opts } = this;
    this.#timer = setTimeout(() => this.#fail(`no complete PROXY protocol header within ${opts.timeoutMs} ms`), opts.timeoutMs);
    this.#timer.unref?.();
    socket.on('readable', this.#onReadable);
    socket.once('end', this.#onEnd);
    socket.once('close', this.#onClose);
    socket.once('error', this.#onError);
    // Bytes may already be buffered (the 'readable' listener then fires on its own), or the socket
    // may already be gone.
    if (socket.destroyed) this.#fail('socket already closed');
  }

  #cleanup(): void {
    this.#settled = true;
    clearTimeout(this.#timer);
    this.socket.removeListener('readable', this.#onReadable);
    this.socket.removeListener('end', this.#onEnd);
    this.socket.removeListener('close', this.#onClose);
    this.socket.removeListener('error', this.#onError);
  }

  #fail(message: string): void {
    if (this.#settled) return;
    this.#cleanup();
    this.reject(new ProxyProtocolError(message));
  }

  #succeed(source: ProxySource | null, consumed: number): void {
    if (this.#settled) return;
    this.#cleanup();
    const rest = this.#buf.subarray(consumed);
    this.#buf = Buffer.alloc(0);
    if (rest.length > 0) this.socket.unshift(rest);
    this.resolve(source);
  }

  #onReadable = (): void => {
    let chunk: Buffer | null;
    while (!this.#settled && (chunk = this.socket.read() as Buffer | null) !== null) {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      this.#decide(parseProxyHeader(this.#buf));
    }
  };

  #decide(r: ProxyParseResult): void {
    if (r.kind === 'done') this.#succeed(r.source, r.length);
    else if (r.kind === 'error') this.#fail(r.message);
    else if (r.kind === 'absent' && this.opts.mode === 'optional') this.#succeed(null, 0);
    else if (r.kind === 'absent') this.#fail('expected a PROXY protocol header');
  }

  #onEnd = (): void => this.#fail('connection ended before a complete PROXY protocol header');
  #onClose = (): void => this.#fail('connection closed before a complete PROXY protocol header');
  #onError = (err: Error): void => this.#fail(`socket error before a complete PROXY protocol header: ${err.message}`);
}
