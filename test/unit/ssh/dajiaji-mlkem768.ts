/**
 * The `mlkem` package (dajiaji/crystals-kyber-js, an ML-KEM implementation
 * independent of @noble/post-quantum) behind the MlKem768 seam, so a test can
 * run one side of a key exchange on it and the other on noble.
 */
import { createMlKem768 } from 'mlkem';
import type { MlKem768 } from '../../../src/ssh/kex/mlkem768x25519.js';

export async function dajiajiMlKem768(): Promise<MlKem768> {
  const kem = await createMlKem768();
  return {
    keygen(seed) {
      const [publicKey, secretKey] = seed === undefined ? kem.generateKeyPair() : kem.deriveKeyPair(seed);
      return { publicKey, secretKey };
    },
    encapsulate(publicKey, msg) {
      const [cipherText, sharedSecret] = kem.encap(publicKey, msg);
      return { cipherText, sharedSecret };
    },
    decapsulate: (cipherText, secretKey) => kem.decap(cipherText, secretKey),
  };
}
