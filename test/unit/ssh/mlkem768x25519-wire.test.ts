/**
 * ssh2's server role running mlkem768x25519-sha256, checked byte by byte by a
 * client written here from draft-ietf-sshm-mlkem-hybrid-kex (sections 2.1, 2.4,
 * 2.5) and RFC 4253, sharing no code with the patch: ML-KEM from the `mlkem`
 * package, X25519 and hashes from node:crypto. It proves that the server signs
 * an exchange hash H in which K = SHA-256(K_PQ || K_CL) is an SSH `string`
 * (not an `mpint`), derives its keys from that same string, and answers a
 * malformed C_INIT with SSH_MSG_DISCONNECT / KEY_EXCHANGE_FAILED.
 */
import net from 'node:net';
import { once } from 'node:events';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  timingSafeEqual,
  verify,
  type Cipher,
  type Decipher,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ssh2 } from '../../../src/ssh/ssh2.js'; // the patched ssh2 the server runs
import type { Connection } from 'ssh2';
import type { MlKem768 } from '../../../src/ssh/kex/mlkem768x25519.js';
import { dajiajiMlKem768 } from './dajiaji-mlkem768.js';

const { Server, utils } = ssh2;
const KEX = 'mlkem768x25519-sha256';
const MSG = { DISCONNECT: 1, SERVICE_REQUEST: 5, SERVICE_ACCEPT: 6, KEXINIT: 20, NEWKEYS: 21, HYBRID_INIT: 30, HYBRID_REPLY: 31 };
const KEY_EXCHANGE_FAILED = 3;

const hostKey = utils.generateKeyPairSync('ed25519');
const hostPublic = utils.parseKey(hostKey.public);
if (hostPublic instanceof Error) throw hostPublic;
const HOST_BLOB = hostPublic.getPublicSSH();

let server: InstanceType<typeof Server>;
let port = 0;
const serverErrors: string[] = [];
const negotiated: string[] = [];
let kem: MlKem768;

beforeAll(async () => {
  kem = await dajiajiMlKem768();
  server = new Server(
    {
      hostKeys: [hostKey.private],
      algorithms: { kex: [KEX] as never, cipher: ['aes128-ctr'], hmac: ['hmac-sha2-256'], compress: ['none'] },
    },
    (conn: Connection) => {
      conn.on('error', (err) => serverErrors.push(err.message));
      conn.on('handshake', (n) => negotiated.push(n.kex));
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

// ---- RFC 4251 encodings --------------------------------------------------------------------

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const sshString = (b: Uint8Array | string): Buffer => {
  const data = typeof b === 'string' ? Buffer.from(b) : Buffer.from(b);
  return Buffer.concat([u32(data.length), data]);
};
/** RFC 4251 mpint of a non-negative big-endian magnitude. */
const mpint = (b: Uint8Array): Buffer => {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  let mag = Buffer.from(b.subarray(i));
  if (mag.length > 0 && (mag[0]! & 0x80) !== 0) mag = Buffer.concat([Buffer.from([0]), mag]);
  return sshString(mag);
};
const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
function readString(buf: Buffer, at: number): [Buffer, number] {
  const len = buf.readUInt32BE(at);
  return [buf.subarray(at + 4, at + 4 + len), at + 4 + len];
}

// ---- transport ------------------------------------------------------------------------------

class Wire {
  private buf = Buffer.alloc(0);
  private waiting: Array<() => void> = [];
  private closed = false;
  readonly sock: net.Socket;
  constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => undefined);
  }
  private wake(): void {
    for (const w of this.waiting.splice(0)) w();
  }
  private async more(): Promise<void> {
    if (this.closed) throw new Error('connection closed by the server');
    await new Promise<void>((r) => this.waiting.push(r));
  }
  async take(n: number): Promise<Buffer> {
    while (this.buf.length < n) await this.more();
    const out = Buffer.from(this.buf.subarray(0, n));
    this.buf = this.buf.subarray(n);
    return out;
  }
  async line(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.subarray(0, i).toString('latin1');
        this.buf = this.buf.subarray(i + 2);
        return l;
      }
      await this.more();
    }
  }
  /** Binary packet (RFC 4253 section 6), no cipher or MAC yet. */
  send(payload: Buffer): void {
    this.sock.write(frame(payload, 8));
  }
  async recv(): Promise<Buffer> {
    const len = (await this.take(4)).readUInt32BE(0);
    const rest = await this.take(len);
    return rest.subarray(1, len - rest[0]!);
  }
}

function frame(payload: Buffer, block: number): Buffer {
  let pad = block - ((5 + payload.length) % block);
  if (pad < 4) pad += block;
  return Buffer.concat([u32(1 + payload.length + pad), Buffer.from([pad]), payload, randomBytes(pad)]);
}

interface Keys {
  cipher: Cipher;
  decipher: Decipher;
  macOut: Buffer;
  macIn: Buffer;
}

async function sendEncrypted(w: Wire, k: Keys, seq: number, payload: Buffer): Promise<void> {
  const packet = frame(payload, 16);
  const mac = createHmac('sha256', k.macOut).update(u32(seq)).update(packet).digest();
  w.sock.write(Buffer.concat([k.cipher.update(packet), mac]));
}

async function recvEncrypted(w: Wire, k: Keys, seq: number): Promise<Buffer> {
  const first = k.decipher.update(await w.take(16));
  const len = first.readUInt32BE(0);
  const packet = Buffer.concat([first, k.decipher.update(await w.take(len + 4 - 16))]);
  const mac = await w.take(32);
  const expected = createHmac('sha256', k.macIn).update(u32(seq)).update(packet).digest();
  if (!timingSafeEqual(mac, expected)) throw new Error('MAC mismatch on the server packet');
  return packet.subarray(5, 4 + len - packet[4]!);
}

function kexinit(): Buffer {
  const lists = [KEX, 'ssh-ed25519', 'aes128-ctr', 'aes128-ctr', 'hmac-sha2-256', 'hmac-sha2-256', 'none', 'none', '', ''];
  return Buffer.concat([Buffer.from([MSG.KEXINIT]), randomBytes(16), ...lists.map((l) => sshString(l)), Buffer.from([0]), u32(0)]);
}

/** RFC 4253 section 7.2 with K already encoded (`encodedK`). */
function derive(encodedK: Buffer, h: Buffer, letter: string, len: number): Buffer {
  return sha256(encodedK, h, Buffer.from(letter), h).subarray(0, len);
}

function keysFrom(encodedK: Buffer, h: Buffer): Keys {
  return {
    cipher: createCipheriv('aes-128-ctr', derive(encodedK, h, 'C', 16), derive(encodedK, h, 'A', 16)),
    decipher: createDecipheriv('aes-128-ctr', derive(encodedK, h, 'D', 16), derive(encodedK, h, 'B', 16)),
    macOut: derive(encodedK, h, 'E', 32),
    macIn: derive(encodedK, h, 'F', 32),
  };
}

async function connect(): Promise<Wire> {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  await once(sock, 'connect');
  return new Wire(sock);
}

/** Ident and KEXINIT in both directions; returns what H needs. */
async function start(w: Wire) {
  const vc = 'SSH-2.0-mlkem-wire-test';
  w.sock.write(`${vc}\r\n`);
  let vs = await w.line();
  while (!vs.startsWith('SSH-')) vs = await w.line();
  const ic = kexinit();
  w.send(ic);
  const is = await w.recv();
  expect(is[0]).toBe(MSG.KEXINIT);
  return { vc, vs, ic, is };
}

interface Exchange {
  k: Buffer;
  hString: Buffer;
  hMpint: Buffer;
  signatureOk: (h: Buffer) => boolean;
  sReply: Buffer;
}

async function hybridExchange(w: Wire): Promise<Exchange> {
  const { vc, vs, ic, is } = await start(w);
  const { publicKey: ek, secretKey: dk } = kem.keygen();
  const x = generateKeyPairSync('x25519');
  const xPublic = x.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  const cInit = Buffer.concat([ek, xPublic]);
  w.send(Buffer.concat([Buffer.from([MSG.HYBRID_INIT]), sshString(cInit)]));

  const reply = await w.recv();
  expect(reply[0]).toBe(MSG.HYBRID_REPLY);
  const [ks, p1] = readString(reply, 1);
  const [sReply, p2] = readString(reply, p1);
  const [sigBlob] = readString(reply, p2);
  expect(ks.equals(HOST_BLOB)).toBe(true);
  expect(sReply.length).toBe(1088 + 32);

  const kPq = kem.decapsulate(sReply.subarray(0, 1088), dk);
  const serverX = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), sReply.subarray(1088)]),
    format: 'der',
    type: 'spki',
  });
  const kCl = diffieHellman({ privateKey: x.privateKey, publicKey: serverX });
  const k = sha256(kPq, kCl);

  const prefix = [sshString(vc), sshString(vs), sshString(ic), sshString(is), sshString(ks), sshString(cInit), sshString(sReply)];
  const hString = sha256(...prefix, sshString(k));
  const hMpint = sha256(...prefix, mpint(k));

  const [sigType, q] = readString(sigBlob, 0);
  const [sig] = readString(sigBlob, q);
  expect(sigType.toString()).toBe('ssh-ed25519');
  const hostKeyObject = createPublicKey(hostPublic instanceof Error ? '' : hostPublic.getPublicPEM());
  return { k, hString, hMpint, sReply, signatureOk: (h) => verify(null, h, hostKeyObject, sig) };
}

async function expectDisconnect(w: Wire): Promise<number> {
  for (;;) {
    const p = await w.recv();
    if (p[0] === MSG.DISCONNECT) return p.readUInt32BE(1);
  }
}

describe('mlkem768x25519-sha256 on the wire (ssh2 server role)', () => {
  it('signs an exchange hash that encodes K as a string, and keys the session from that string', async () => {
    // Where K's first byte is 0x01..0x7f the string and mpint encodings coincide;
    // keep exchanging until one run tells them apart (each run: 1/2 chance).
    for (let attempt = 1; attempt <= 40; attempt++) {
      const w = await connect();
      try {
        const ex = await hybridExchange(w);
        expect(ex.signatureOk(ex.hString)).toBe(true);
        if ((ex.k[0]! & 0x80) === 0) continue;

        expect(ex.hMpint.equals(ex.hString)).toBe(false);
        expect(ex.signatureOk(ex.hMpint)).toBe(false);

        expect((await w.recv())[0]).toBe(MSG.NEWKEYS);
        w.send(Buffer.from([MSG.NEWKEYS]));
        const keys = keysFrom(sshString(ex.k), ex.hString);
        await sendEncrypted(w, keys, 3, Buffer.concat([Buffer.from([MSG.SERVICE_REQUEST]), sshString('ssh-userauth')]));
        const accept = await recvEncrypted(w, keys, 3);
        expect(accept[0]).toBe(MSG.SERVICE_ACCEPT);
        expect(readString(accept, 1)[0].toString()).toBe('ssh-userauth');
        expect(negotiated.at(-1)).toBe(KEX);
        return;
      } finally {
        w.sock.destroy();
      }
    }
    throw new Error('40 exchanges without a K whose first byte is >= 0x80');
  });

  it.each([
    ['one byte short', 1215],
    ['one byte long', 1217],
    ['only the X25519 share', 32],
  ])('answers a C_INIT that is %s with DISCONNECT KEY_EXCHANGE_FAILED and stays up', async (_what, len) => {
    const before = serverErrors.length;
    const w = await connect();
    try {
      await start(w);
      w.send(Buffer.concat([Buffer.from([MSG.HYBRID_INIT]), sshString(randomBytes(len))]));
      expect(await expectDisconnect(w)).toBe(KEY_EXCHANGE_FAILED);
    } finally {
      w.sock.destroy();
    }
    expect(serverErrors.slice(before).join('\n')).toContain(`C_INIT is ${len} bytes, expected 1216`);

    const again = await connect();
    try {
      const ex = await hybridExchange(again);
      expect(ex.signatureOk(ex.hString)).toBe(true);
    } finally {
      again.sock.destroy();
    }
  });

  it('answers an encapsulation key that fails the FIPS 203 modulus check with DISCONNECT KEY_EXCHANGE_FAILED', async () => {
    const kat = JSON.parse(
      readFileSync(new URL('../../fixtures/ml-kem-768-kat.json', import.meta.url), 'utf8'),
    ) as { invalidEncapsulationKeys: { ek: string[] } };
    const before = serverErrors.length;
    const w = await connect();
    try {
      await start(w);
      const x = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
      const cInit = Buffer.concat([Buffer.from(kat.invalidEncapsulationKeys.ek[1]!, 'hex'), x]);
      w.send(Buffer.concat([Buffer.from([MSG.HYBRID_INIT]), sshString(cInit)]));
      expect(await expectDisconnect(w)).toBe(KEY_EXCHANGE_FAILED);
    } finally {
      w.sock.destroy();
    }
    expect(serverErrors.slice(before).join('\n')).toMatch(/modulus/);
  });
});
