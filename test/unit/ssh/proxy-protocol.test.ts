/**
 * PROXY protocol v1/v2 reader, over real loopback TCP sockets: the header is taken off the stream,
 * whatever follows reaches the next reader byte for byte, and malformed input is refused early.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
// Keys come from the patched ssh2: stock ssh2 1.17.0 writes 1 in 256 ed25519 keys it cannot parse back (ssh2 #1390).
import { ssh2 as patchedSsh2 } from '../../../src/ssh/ssh2.js';
const { generateKeyPairSync } = patchedSsh2.utils;
import { readProxyHeader, ProxyProtocolError, V2_SIGNATURE, MAX_V2_LENGTH, type ProxySource } from '../../../src/ssh/proxy-protocol.js';

type Mode = 'optional' | 'required';
interface Outcome {
  result: ProxySource | null | ProxyProtocolError;
  /** Everything a 'data' listener saw after readProxyHeader settled (until the client ended). */
  rest: Buffer;
  /** readProxyHeader's listeners still on the socket once it settled. */
  leftover: number;
  ms: number;
}

let server: Server;
let port: number;
const pending: ((s: Socket) => void)[] = [];

beforeAll(async () => {
  server = createServer((s) => pending.shift()?.(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** Connects, sends `chunks` (each its own write, `gapMs` apart), ends, and reports what the server side saw. */
async function exchange(chunks: (Buffer | string)[], mode: Mode, o: { gapMs?: number; timeoutMs?: number; end?: boolean } = {}): Promise<Outcome> {
  const accepted = new Promise<Socket>((r) => pending.push(r));
  const client = connect({ host: '127.0.0.1', port, noDelay: true });
  client.on('error', () => undefined);
  await new Promise<void>((r) => client.once('connect', () => r()));
  const sock = await accepted;
  sock.on('error', () => undefined);
  const count = () => ['readable', 'end', 'close', 'error', 'data'].reduce((n, ev) => n + sock.listenerCount(ev), 0);
  const baseline = count();
  const started = Date.now();
  const outcome = (async (): Promise<Outcome> => {
    let result: Outcome['result'];
    try {
      result = await readProxyHeader(sock, { mode, timeoutMs: o.timeoutMs ?? 2000 });
    } catch (e) {
      result = e as ProxyProtocolError;
    }
    const ms = Date.now() - started;
    const leftover = count() - baseline;
    if (result instanceof Error) {
      sock.destroy();
      return { result, rest: Buffer.alloc(0), leftover, ms };
    }
    const parts: Buffer[] = [];
    sock.on('data', (d: Buffer) => parts.push(d));
    await new Promise<void>((r) => sock.once('end', () => r()));
    sock.destroy();
    return { result, rest: Buffer.concat(parts), leftover, ms };
  })();
  for (const c of chunks) {
    client.write(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
    if (o.gapMs !== undefined) await sleep(o.gapMs);
  }
  if (o.end !== false) client.end();
  const out = await outcome;
  client.destroy();
  return out;
}

const bytes = (...parts: (Buffer | string)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const tlv = (type: number, value: Buffer) => bytes(Buffer.from([type]), u16(value.length), value);

/** A v2 header: signature, version/command, family/transport, length (default: the body's), body. */
function v2(body: Buffer, o: { verCmd?: number; famProto?: number; length?: number } = {}): Buffer {
  return bytes(V2_SIGNATURE, Buffer.from([o.verCmd ?? 0x21, o.famProto ?? 0x11]), u16(o.length ?? body.length), body);
}
const ipv4Block = (src: number[], dst: number[], sport: number, dport: number) => bytes(Buffer.from(src), Buffer.from(dst), u16(sport), u16(dport));
const ipv6Block = (srcHex: string, dstHex: string, sport: number, dport: number) => bytes(Buffer.from(srcHex, 'hex'), Buffer.from(dstHex, 'hex'), u16(sport), u16(dport));
const TLVS = bytes(tlv(0x01, Buffer.from('h2')), tlv(0x05, randomBytes(32)), tlv(0x04, Buffer.alloc(7)), tlv(0x02, Buffer.from('example.org')));

const IDENT = 'SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n';
/** Something that looks like what follows an ident: binary, with CR/LF and NUL bytes. */
const AFTER = bytes(IDENT, Buffer.from([0, 0, 0x05, 0xdc, 0x0d, 0x0a, 0x14]), randomBytes(3000));

function expectError(o: Outcome, message: RegExp) {
  expect(o.result).toBeInstanceOf(ProxyProtocolError);
  const e = o.result as ProxyProtocolError;
  expect(e.code).toBe('PROXY_PROTOCOL');
  expect(e.message).toMatch(message);
}

describe('PROXY v1', () => {
  it('TCP4: returns the source, the rest of the stream is intact', async () => {
    const o = await exchange([bytes('PROXY TCP4 192.0.2.10 198.51.100.1 56324 22\r\n', AFTER)], 'required');
    expect(o.result).toEqual({ ip: '192.0.2.10', port: 56324 });
    expect(o.rest.equals(AFTER)).toBe(true);
    expect(o.leftover).toBe(0);
  });

  it('TCP6: returns the source address as written, IPv4-mapped included', async () => {
    const o = await exchange([bytes('PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n', IDENT)], 'required');
    expect(o.result).toEqual({ ip: '2001:db8::7', port: 65535 });
    expect(o.rest.toString('latin1')).toBe(IDENT);
    const m = await exchange([bytes('PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n', IDENT)], 'required');
    expect(m.result).toEqual({ ip: '::ffff:192.0.2.1', port: 1 });
  });

  it('the longest legal line (107 bytes) is accepted', async () => {
    const full = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const line = `PROXY TCP6 ${full} ${full} 65535 65535\r\n`;
    expect(line.length).toBe(104);
    const o = await exchange([bytes(line, IDENT)], 'required');
    expect(o.result).toEqual({ ip: full, port: 65535 });
    const unknown = `PROXY UNKNOWN ${'x'.repeat(107 - 'PROXY UNKNOWN \r\n'.length)}\r\n`;
    expect(unknown.length).toBe(107);
    const u = await exchange([bytes(unknown, IDENT)], 'required');
    expect(u.result).toBeNull();
    expect(u.rest.toString('latin1')).toBe(IDENT);
  });

  it('UNKNOWN resolves null (use the socket address), with or without trailing fields', async () => {
    const a = await exchange([bytes('PROXY UNKNOWN\r\n', AFTER)], 'required');
    expect(a.result).toBeNull();
    expect(a.rest.equals(AFTER)).toBe(true);
    const b = await exchange([bytes('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n', IDENT)], 'optional');
    expect(b.result).toBeNull();
    expect(b.rest.toString('latin1')).toBe(IDENT);
  });

  it('split across 1-byte writes (separate segments), followed by data', async () => {
    const header = bytes('PROXY TCP4 203.0.113.9 127.0.0.1 40000 2222\r\n');
    const chunks = [...header].map((b) => Buffer.from([b]));
    const o = await exchange([...chunks, AFTER], 'required', { gapMs: 2 });
    expect(o.result).toEqual({ ip: '203.0.113.9', port: 40000 });
    expect(o.rest.equals(AFTER)).toBe(true);
  });

  it.each([
    ['bad IPv4 address', 'PROXY TCP4 192.0.2.256 127.0.0.1 1 2\r\n', /source address/],
    ['IPv6 address under TCP4', 'PROXY TCP4 ::1 127.0.0.1 1 2\r\n', /source address/],
    ['IPv4 address under TCP6', 'PROXY TCP6 ::1 127.0.0.1 1 2\r\n', /destination address/],
    ['hostname instead of address', 'PROXY TCP4 localhost 127.0.0.1 1 2\r\n', /source address/],
    ['port above 65535', 'PROXY TCP4 192.0.2.1 127.0.0.1 65536 22\r\n', /source port/],
    ['port with a leading zero', 'PROXY TCP4 192.0.2.1 127.0.0.1 1 022\r\n', /destination port/],
    ['negative port', 'PROXY TCP4 192.0.2.1 127.0.0.1 -1 22\r\n', /source port/],
    ['double space', 'PROXY TCP4  192.0.2.1 127.0.0.1 1 22\r\n', /single spaces/],
    ['trailing space', 'PROXY TCP4 192.0.2.1 127.0.0.1 1 22 \r\n', /single spaces/],
    ['missing field', 'PROXY TCP4 192.0.2.1 127.0.0.1 1\r\n', /single spaces/],
    ['unknown protocol', 'PROXY TCP5 192.0.2.1 127.0.0.1 1 22\r\n', /unsupported protocol/],
    ['LF without CR', 'PROXY TCP4 192.0.2.1 127.0.0.1 1 22\n', /CRLF/],
    ['CR without LF', 'PROXY TCP4 192.0.2.1 127.0.0.1 1 22\rX', /CR not followed by LF/],
    ['tab separator', 'PROXY TCP4\t192.0.2.1 127.0.0.1 1 22\r\n', /invalid byte/],
    ['no CRLF within 107 bytes', `PROXY TCP6 ${'f'.repeat(200)}`, /no CRLF within 107 bytes/],
    ['108-byte UNKNOWN line', `PROXY UNKNOWN ${'x'.repeat(92)}\r\n`, /no CRLF within 107 bytes/],
  ])('malformed: %s → ProxyProtocolError in both modes', async (_name, header, message) => {
    for (const mode of ['required', 'optional'] as const) {
      // The client does not end: rejection must come from the bytes, not from EOF or the timeout.
      const o = await exchange([bytes(header, IDENT)], mode, { end: false, timeoutMs: 5000 });
      expectError(o, message);
      expect(o.ms).toBeLessThan(1000);
      expect(o.leftover).toBe(0);
    }
  });
});

describe('PROXY v2', () => {
  it('PROXY over IPv4 with TLVs: returns the source, TLVs skipped, the rest intact', async () => {
    const h = v2(bytes(ipv4Block([192, 0, 2, 33], [10, 0, 0, 1], 51000, 22), TLVS));
    const o = await exchange([bytes(h, AFTER)], 'required');
    expect(o.result).toEqual({ ip: '192.0.2.33', port: 51000 });
    expect(o.rest.equals(AFTER)).toBe(true);
    expect(o.leftover).toBe(0);
  });

  it('PROXY over IPv6 with TLVs; IPv4-mapped addresses are kept as IPv6', async () => {
    const h = v2(bytes(ipv6Block('20010db8000000000000000000000042', '20010db8000000000000000000000001', 443, 22), TLVS), { famProto: 0x21 });
    const o = await exchange([bytes(h, AFTER)], 'required');
    expect(o.result).toEqual({ ip: '2001:db8::42', port: 443 });
    expect(o.rest.equals(AFTER)).toBe(true);
    const full = v2(ipv6Block('20010db8000100020003000400050006', '00000000000000000000000000000001', 1, 2), { famProto: 0x21 });
    expect((await exchange([full], 'required')).result).toEqual({ ip: '2001:db8:1:2:3:4:5:6', port: 1 });
    const mapped = v2(ipv6Block('00000000000000000000ffffc0000201', '00000000000000000000000000000001', 7, 22), { famProto: 0x21 });
    expect((await exchange([mapped, IDENT], 'required')).result).toEqual({ ip: '::ffff:192.0.2.1', port: 7 });
    const loop = v2(ipv6Block('00000000000000000000000000000001', '00000000000000000000000000000001', 9, 22), { famProto: 0x21 });
    expect((await exchange([loop], 'required')).result).toEqual({ ip: '::1', port: 9 });
  });

  it('LOCAL command resolves null (health checks), whatever the family and length', async () => {
    const a = await exchange([bytes(v2(Buffer.alloc(0), { verCmd: 0x20, famProto: 0x00 }), AFTER)], 'required');
    expect(a.result).toBeNull();
    expect(a.rest.equals(AFTER)).toBe(true);
    const b = await exchange([bytes(v2(bytes(ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), TLVS), { verCmd: 0x20 }), IDENT)], 'required');
    expect(b.result).toBeNull();
    expect(b.rest.toString('latin1')).toBe(IDENT);
  });

  it('PROXY with AF_UNSPEC resolves null (the spec: use the real endpoints)', async () => {
    const o = await exchange([bytes(v2(Buffer.alloc(0), { famProto: 0x00 }), IDENT)], 'required');
    expect(o.result).toBeNull();
    expect(o.rest.toString('latin1')).toBe(IDENT);
  });

  it('split across 1-byte writes (separate segments), followed by data', async () => {
    const h = v2(bytes(ipv6Block('20010db8000000000000000000000099', '20010db8000000000000000000000001', 60001, 22), TLVS), { famProto: 0x21 });
    const o = await exchange([...[...h].map((b) => Buffer.from([b])), AFTER], 'required', { gapMs: 1 });
    expect(o.result).toEqual({ ip: '2001:db8::99', port: 60001 });
    expect(o.rest.equals(AFTER)).toBe(true);
  });

  it('the largest accepted length is read whole; data after it is intact', async () => {
    const pad = MAX_V2_LENGTH - 12 - 3;
    const h = v2(bytes(ipv4Block([192, 0, 2, 1], [192, 0, 2, 2], 5, 22), tlv(0x04, Buffer.alloc(pad))));
    expect(h.length).toBe(16 + MAX_V2_LENGTH);
    const o = await exchange([bytes(h, AFTER)], 'required');
    expect(o.result).toEqual({ ip: '192.0.2.1', port: 5 });
    expect(o.rest.equals(AFTER)).toBe(true);
  });

  it.each([
    ['version 1 in the v2 framing', v2(ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), { verCmd: 0x11 }), /unsupported version 1/],
    ['version 3', v2(ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), { verCmd: 0x31 }), /unsupported version 3/],
    ['unknown command', v2(ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), { verCmd: 0x22 }), /unknown command 2/],
    // Only the 16-byte fixed part is sent: the length alone must be refused, without waiting for 64 KiB.
    ['oversized length', bytes(V2_SIGNATURE, Buffer.from([0x21, 0x11]), u16(0xffff)), /length 65535 exceeds/],
    ['length one past the cap', bytes(V2_SIGNATURE, Buffer.from([0x21, 0x11]), u16(MAX_V2_LENGTH + 1)), /exceeds/],
    ['invalid family', v2(ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), { famProto: 0x41 }), /family/],
    ['DGRAM transport', v2(ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), { famProto: 0x12 }), /STREAM/],
    ['AF_UNIX source', v2(Buffer.alloc(216), { famProto: 0x31 }), /AF_UNIX/],
    ['length too short for IPv4', v2(Buffer.alloc(8)), /too short/],
    ['length too short for IPv6', v2(Buffer.alloc(20), { famProto: 0x21 }), /too short/],
    ['TLV overruns the header', v2(bytes(ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), Buffer.from([0x01, 0x00, 0x09, 0x41]))), /TLV overruns/],
    ['truncated TLV', v2(bytes(ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), Buffer.from([0x01, 0x00]))), /truncated TLV/],
  ])('malformed: %s → ProxyProtocolError', async (_name, header, message) => {
    for (const mode of ['required', 'optional'] as const) {
      const o = await exchange([header], mode, { end: false, timeoutMs: 5000 });
      expectError(o, message);
      expect(o.ms).toBeLessThan(1000);
    }
  });
});

describe('no header', () => {
  it('optional mode: an SSH client without a header passes through byte for byte', async () => {
    const o = await exchange([AFTER], 'optional');
    expect(o.result).toBeNull();
    expect(o.rest.equals(AFTER)).toBe(true);
    expect(o.leftover).toBe(0);
  });

  it('optional mode: bytes that begin like a signature but diverge pass through intact', async () => {
    for (const data of [bytes('PROXX hello\r\n'), bytes('PROXYZ\r\n'), bytes('\r\n\r\n\0\r\nQUITX'), bytes('\r\nfoo'), bytes('P')]) {
      const o = await exchange([...[...data].map((b) => Buffer.from([b])), IDENT], 'optional', { gapMs: 1 });
      expect(o.result).toBeNull();
      expect(o.rest.equals(bytes(data, IDENT))).toBe(true);
    }
  });

  it('required mode: an SSH ident is refused at once', async () => {
    const o = await exchange([bytes(IDENT)], 'required', { end: false, timeoutMs: 5000 });
    expectError(o, /expected a PROXY protocol header/);
    expect(o.ms).toBeLessThan(1000);
    expect(o.leftover).toBe(0);
  });

  it('required mode: a connection that ends without a header is refused', async () => {
    const o = await exchange([], 'required');
    expectError(o, /ended before/);
    const p = await exchange([bytes('PROXY TCP4 1.2.3.4')], 'optional');
    expectError(p, /ended before/);
  });
});

describe('timeout', () => {
  it('nothing sent: rejects after timeoutMs', async () => {
    const o = await exchange([], 'required', { end: false, timeoutMs: 200 });
    expectError(o, /within 200 ms/);
    expect(o.ms).toBeGreaterThanOrEqual(190);
    expect(o.ms).toBeLessThan(1500);
    expect(o.leftover).toBe(0);
  });

  it('an incomplete header (v1 and v2) rejects after timeoutMs, in either mode', async () => {
    const a = await exchange([bytes('PROXY TCP4 192.0.2.1 ')], 'required', { end: false, timeoutMs: 200 });
    expectError(a, /within 200 ms/);
    const b = await exchange([v2(ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)).subarray(0, 20)], 'optional', { end: false, timeoutMs: 200 });
    expectError(b, /within 200 ms/);
    const c = await exchange([V2_SIGNATURE.subarray(0, 5)], 'optional', { end: false, timeoutMs: 200 });
    expectError(c, /within 200 ms/);
  });
});

describe('in front of ssh2', () => {
  it('a client whose ident shares a TCP segment with the header completes the SSH handshake', async () => {
    const hostKey = generateKeyPairSync('ed25519');
    const infos: { ip: string | undefined; port: number | undefined }[] = [];
    const ssh = new ssh2.Server({ hostKeys: [hostKey.private] }, (client, info) => {
      infos.push({ ip: info.ip, port: info.port });
      client.on('authentication', (ctx) => (ctx.method === 'password' && ctx.password === 'pw' ? ctx.accept() : ctx.reject(['password'])));
      client.on('ready', () => client.end());
      client.on('error', () => undefined);
    });
    for (const v of ['v1', 'v2'] as const) {
      const accepted = new Promise<Socket>((r) => pending.push(r));
      const sock = connect({ host: '127.0.0.1', port, noDelay: true });
      await new Promise<void>((r) => sock.once('connect', () => r()));
      const serverSide = await accepted;
      const header = v === 'v1' ? bytes('PROXY TCP4 198.51.100.7 127.0.0.1 41234 22\r\n') : v2(bytes(ipv4Block([198, 51, 100, 7], [127, 0, 0, 1], 41234, 22), TLVS));
      const segments: number[] = [];
      const sideRead = serverSide.read.bind(serverSide);
      // Record how the header arrived: one read holding both header and ident.
      serverSide.read = ((n?: number) => {
        const d = sideRead(n) as Buffer | null;
        if (d) segments.push(d.length);
        return d;
      }) as typeof serverSide.read;
      const handed = readProxyHeader(serverSide, { mode: 'required', timeoutMs: 2000 }).then((src) => {
        serverSide.read = sideRead;
        // What the server wiring does: the proxied source becomes the connection's address.
        if (src) {
          Object.defineProperty(serverSide, 'remoteAddress', { value: src.ip, configurable: true });
          Object.defineProperty(serverSide, 'remotePort', { value: src.port, configurable: true });
        }
        ssh.injectSocket(serverSide);
      });
      // Header and the client's ident leave in one write (cork → single writev → one segment).
      sock.cork();
      sock.write(header);
      const client = new ssh2.Client();
      const ready = new Promise<void>((resolve, reject) => {
        client.once('ready', () => resolve());
        client.once('error', reject);
      });
      client.connect({ sock, username: 'u', password: 'pw', hostVerifier: () => true });
      await sleep(0);
      sock.uncork();
      await handed;
      await ready;
      client.end();
      expect(segments[0]).toBeGreaterThan(header.length);
    }
    expect(infos).toEqual([
      { ip: '198.51.100.7', port: 41234 },
      { ip: '198.51.100.7', port: 41234 },
    ]);
  });
});
