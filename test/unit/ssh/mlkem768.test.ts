/**
 * FIPS 203 known answers for ML-KEM-768 (test/fixtures/ml-kem-768-kat.json:
 * C2SP/wycheproof key generation, C2SP/CCTV encapsulation, decapsulation,
 * implicit rejection and modulus-check vectors), run through the MlKem768 seam
 * for both implementations: @noble/post-quantum, which ssh2 uses by default,
 * and the independent `mlkem` package the hybrid tests put on the other side.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { mlKem768Provider, type MlKem768 } from '../../../src/ssh/kex/mlkem768x25519.js';
import { dajiajiMlKem768 } from './dajiaji-mlkem768.js';

interface Kat {
  keygen: Array<{ name: string; seed: string; ek: string; dk: string }>;
  encapsDecaps: Array<{ name: string; ek: string; dk: string; m: string; K: string; c: string }>;
  implicitRejection: Array<{ name: string; dk: string; c: string; K: string }>;
  invalidEncapsulationKeys: { ek: string[] };
}

const KAT = JSON.parse(
  readFileSync(new URL('../../fixtures/ml-kem-768-kat.json', import.meta.url), 'utf8'),
) as Kat;
const bytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const implementations: Array<[string, () => Promise<MlKem768>]> = [
  ['@noble/post-quantum (ssh2 default)', async () => mlKem768Provider('server')],
  ['mlkem (dajiaji)', dajiajiMlKem768],
];

it('ssh2 uses @noble/post-quantum ml_kem768 on both sides unless told otherwise', () => {
  expect(mlKem768Provider('server')).toBe(ml_kem768);
  expect(mlKem768Provider('client')).toBe(ml_kem768);
});

describe.each(implementations)('ML-KEM-768 via %s', (_name, make) => {
  let kem: MlKem768;
  beforeAll(async () => {
    kem = await make();
  });

  it.each(KAT.keygen.map((v) => [v.name, v] as const))(
    'derives the published encapsulation and decapsulation keys from the seed d || z (%s)',
    (_n, v) => {
      const { publicKey, secretKey } = kem.keygen(bytes(v.seed));
      expect(hex(publicKey)).toBe(v.ek);
      expect(hex(secretKey)).toBe(v.dk);
    },
  );

  it.each(KAT.encapsDecaps.map((v) => [v.name, v] as const))(
    'encapsulates to the published ciphertext and secret for a fixed m, and decapsulates it back (%s)',
    (_n, v) => {
      const { cipherText, sharedSecret } = kem.encapsulate(bytes(v.ek), bytes(v.m));
      expect(hex(cipherText)).toBe(v.c);
      expect(hex(sharedSecret)).toBe(v.K);
      expect(hex(kem.decapsulate(bytes(v.c), bytes(v.dk)))).toBe(v.K);
    },
  );

  it.each(KAT.implicitRejection.map((v) => [v.name, v] as const))(
    'answers a ciphertext that does not re-encrypt with the implicit-rejection secret (%s)',
    (_n, v) => {
      expect(hex(kem.decapsulate(bytes(v.c), bytes(v.dk)))).toBe(v.K);
    },
  );

  it('refuses to encapsulate to a key with a coefficient not reduced mod q (FIPS 203 section 7.2)', () => {
    expect(KAT.invalidEncapsulationKeys.ek.length).toBeGreaterThan(0);
    for (const ek of KAT.invalidEncapsulationKeys.ek) {
      expect(() => kem.encapsulate(bytes(ek))).toThrow();
    }
  });

  it('agrees with itself on random keys: decapsulation recovers the encapsulated secret', () => {
    const { publicKey, secretKey } = kem.keygen();
    const { cipherText, sharedSecret } = kem.encapsulate(publicKey);
    expect(publicKey.length).toBe(1184);
    expect(cipherText.length).toBe(1088);
    expect(hex(kem.decapsulate(cipherText, secretKey))).toBe(hex(sharedSecret));
  });
});
