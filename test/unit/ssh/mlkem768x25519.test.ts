/**
 * The three steps of mlkem768x25519-sha256 as ssh2 runs them (patch file
 * lib/protocol/mlkem768x25519.js): message layout, the combiner
 * K = SHA-256(K_PQ || K_CL) of draft-ietf-sshm-mlkem-hybrid-kex section 2.4,
 * and the checks the draft requires before encapsulating or decapsulating.
 * The client side runs on the `mlkem` package, the server side on noble.
 */
import { createHash, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  C_INIT_BYTES,
  S_REPLY_BYTES,
  hybridSteps,
  mlKem768Provider,
  type MlKem768,
} from '../../../src/ssh/kex/mlkem768x25519.js';
import { dajiajiMlKem768 } from './dajiaji-mlkem768.js';

const noble = mlKem768Provider('server');
let dajiaji: MlKem768;
beforeAll(async () => {
  dajiaji = await dajiajiMlKem768();
});

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** Wraps a provider and keeps what it produced. */
function recording(kem: MlKem768) {
  const seen: { publicKey?: Uint8Array; cipherText?: Uint8Array; sharedSecret?: Uint8Array } = {};
  const wrapped: MlKem768 = {
    keygen: (seed) => {
      const k = kem.keygen(seed);
      seen.publicKey = k.publicKey;
      return k;
    },
    encapsulate: (pk, m) => {
      const e = kem.encapsulate(pk, m);
      seen.cipherText = e.cipherText;
      seen.sharedSecret = e.sharedSecret;
      return e;
    },
    decapsulate: (ct, sk) => kem.decapsulate(ct, sk),
  };
  return { kem: wrapped, seen };
}

/** X25519 with Node's crypto directly (not through the code under test). */
function x25519(privateKey: import('node:crypto').KeyObject, peer: Uint8Array): Buffer {
  const spki = Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), peer]);
  return diffieHellman({ privateKey, publicKey: createPublicKey({ key: spki, format: 'der', type: 'spki' }) });
}

describe('mlkem768x25519-sha256 exchange steps', () => {
  it('sends C_INIT as the 1184-byte ML-KEM-768 encapsulation key followed by the 32-byte X25519 key', () => {
    const client = recording(dajiaji);
    const { init } = hybridSteps.clientInit(client.kem);
    expect(C_INIT_BYTES).toBe(1216);
    expect(init.length).toBe(1216);
    expect(hex(init.subarray(0, 1184))).toBe(hex(client.seen.publicKey!));
  });

  it('answers with S_REPLY = the 1088-byte ciphertext followed by the 32-byte X25519 key, and both sides get K = SHA-256(K_PQ || K_CL)', () => {
    const server = recording(noble);
    const { init, state } = hybridSteps.clientInit(dajiaji);
    const { reply, secret } = hybridSteps.serverReply(server.kem, init);
    expect(S_REPLY_BYTES).toBe(1120);
    expect(reply.length).toBe(1120);
    expect(hex(reply.subarray(0, 1088))).toBe(hex(server.seen.cipherText!));

    const kPq = server.seen.sharedSecret!;
    const kCl = x25519(state.x25519, reply.subarray(1088));
    expect(secret.length).toBe(32);
    expect(hex(secret)).toBe(hex(sha256(kPq, kCl)));
    expect(hex(secret)).not.toBe(hex(sha256(kCl, kPq)));
    expect(hex(hybridSteps.clientSecret(dajiaji, state, reply))).toBe(hex(secret));
  });

  it('uses fresh ML-KEM and X25519 keys for every exchange', () => {
    const a = hybridSteps.clientInit(noble).init;
    const b = hybridSteps.clientInit(noble).init;
    expect(hex(a.subarray(0, 1184))).not.toBe(hex(b.subarray(0, 1184)));
    expect(hex(a.subarray(1184))).not.toBe(hex(b.subarray(1184)));
  });

  it('computes the RFC 7748 section 6.1 X25519 shared secret as raw bytes', () => {
    const alice = createPrivateKey({
      key: Buffer.from(
        '302e020100300506032b656e04220420' + '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
        'hex',
      ),
      format: 'der',
      type: 'pkcs8',
    });
    const bobPublic = Buffer.from('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f', 'hex');
    expect(hex(hybridSteps.x25519Shared(alice, bobPublic))).toBe(
      '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
    );
  });

  it('refuses an X25519 share that yields the all-zero secret (a low-order point)', () => {
    const { init } = hybridSteps.clientInit(noble);
    const lowOrder = Buffer.from(init);
    lowOrder.fill(0, 1184);
    expect(() => hybridSteps.serverReply(noble, lowOrder)).toThrow();
  });

  it.each([1215, 1217, 1184, 0])('refuses a C_INIT of %i bytes before encapsulating', (len) => {
    const { init } = hybridSteps.clientInit(noble);
    const sized = Buffer.alloc(len);
    init.copy(sized, 0, 0, Math.min(len, init.length));
    const server = recording(noble);
    expect(() => hybridSteps.serverReply(server.kem, sized)).toThrow(`C_INIT is ${len} bytes, expected 1216`);
    expect(server.seen.cipherText).toBeUndefined();
  });

  it('refuses a C_INIT whose encapsulation key fails the FIPS 203 modulus check', () => {
    const kat = JSON.parse(
      readFileSync(new URL('../../fixtures/ml-kem-768-kat.json', import.meta.url), 'utf8'),
    ) as { invalidEncapsulationKeys: { ek: string[] } };
    const { init } = hybridSteps.clientInit(noble);
    const bad = Buffer.concat([Buffer.from(kat.invalidEncapsulationKeys.ek[0]!, 'hex'), init.subarray(1184)]);
    expect(bad.length).toBe(1216);
    expect(() => hybridSteps.serverReply(noble, bad)).toThrow(/modulus/);
  });

  it.each([1119, 1121, 1088])('refuses an S_REPLY of %i bytes before decapsulating', (len) => {
    const { init, state } = hybridSteps.clientInit(noble);
    const { reply } = hybridSteps.serverReply(noble, init);
    const sized = Buffer.alloc(len);
    reply.copy(sized, 0, 0, Math.min(len, reply.length));
    expect(() => hybridSteps.clientSecret(noble, state, sized)).toThrow(`S_REPLY is ${len} bytes, expected 1120`);
  });

  it('gives the client a different K when the ciphertext was altered (implicit rejection, no error)', () => {
    const { init, state } = hybridSteps.clientInit(dajiaji);
    const { reply, secret } = hybridSteps.serverReply(noble, init);
    const corrupted = Buffer.from(reply);
    corrupted[100]! ^= 0x01;
    expect(hex(hybridSteps.clientSecret(dajiaji, state, corrupted))).not.toBe(hex(secret));
  });
});
