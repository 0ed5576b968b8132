/**
 * The hybrid post-quantum key exchange `mlkem768x25519-sha256`
 * (draft-ietf-sshm-mlkem-hybrid-kex, RFC 10042; OpenSSH 9.9+ offers it first)
 * as patches/ssh2+1.17.0.patch adds it to ssh2: the name to list in
 * `algorithms.kex`, whether this Node can run it, and the seam that chooses the
 * ML-KEM-768 implementation (@noble/post-quantum by default). The exchange
 * itself lives in ssh2's lib/protocol/mlkem768x25519.js and kex.js; this is the
 * one typed way in.
 */
import { ssh2Constants, ssh2Mlkem768x25519 } from '../ssh2.js';
import type { KeyObject } from 'node:crypto';

export const MLKEM768X25519_SHA256 = 'mlkem768x25519-sha256';

/**
 * FIPS 203 ML-KEM-768, shaped like @noble/post-quantum's `ml_kem768`. The
 * optional inputs are the deterministic hooks of the standard (keygen's 64-byte
 * seed d || z, encapsulate's 32-byte message m), for known-answer tests only.
 * `encapsulate` must throw on an encapsulation key that fails the FIPS 203
 * section 7.2 checks.
 */
export interface MlKem768 {
  keygen(seed?: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(publicKey: Uint8Array, msg?: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

export type KexRole = 'client' | 'server';

/** Client secret keys between C_INIT and S_REPLY (opaque). */
export interface HybridClientState {
  readonly secretKey: Uint8Array;
  readonly x25519: KeyObject;
}

interface HybridModule {
  NAME: string;
  C_INIT_BYTES: number;
  S_REPLY_BYTES: number;
  setProvider(provider: MlKem768 | undefined, role?: KexRole): void;
  getProvider(isServer: boolean): MlKem768;
  clientInit(kem: MlKem768): { init: Buffer; state: HybridClientState };
  serverReply(kem: MlKem768, cInit: Uint8Array): { reply: Buffer; secret: Buffer };
  clientSecret(kem: MlKem768, state: HybridClientState, sReply: Uint8Array): Buffer;
  combine(kPq: Uint8Array, kCl: Uint8Array): Buffer;
  x25519Shared(privateKey: KeyObject, peerPublic: Uint8Array): Buffer;
}

const hybrid = ssh2Mlkem768x25519 as HybridModule;
const constants = ssh2Constants;

/** C_INIT: ML-KEM-768 encapsulation key (1184 bytes) || X25519 public key (32). */
export const C_INIT_BYTES = hybrid.C_INIT_BYTES;
/** S_REPLY: ML-KEM-768 ciphertext (1088 bytes) || X25519 public key (32). */
export const S_REPLY_BYTES = hybrid.S_REPLY_BYTES;

/**
 * Whether ssh2 accepts the name in `algorithms.kex` here (X25519 in Node's
 * crypto, and require(esm) to load @noble/post-quantum: Node >= 20.19). Naming
 * it where this is false makes ssh2 throw "Unsupported algorithm".
 */
export function mlkem768x25519Supported(): boolean {
  return constants.mlkem768x25519Supported === true;
}

/**
 * Makes connections of `role` (both when omitted) use `provider` for ML-KEM-768;
 * `undefined` restores @noble/post-quantum. Process-wide: meant for tests that
 * run a client on one implementation against a server on another.
 */
export function setMlKem768Provider(provider: MlKem768 | undefined, role?: KexRole): void {
  hybrid.setProvider(provider, role);
}

/** The ML-KEM-768 implementation that connections of `role` use now. */
export function mlKem768Provider(role: KexRole): MlKem768 {
  return hybrid.getProvider(role === 'server');
}

/**
 * The exchange's three steps as ssh2 runs them, for tests that speak the
 * protocol themselves. The secrets are K's 32 raw bytes; SSH encodes K as a
 * `string` in the exchange hash and in key derivation.
 */
export const hybridSteps: {
  clientInit(kem: MlKem768): { init: Buffer; state: HybridClientState };
  serverReply(kem: MlKem768, cInit: Uint8Array): { reply: Buffer; secret: Buffer };
  clientSecret(kem: MlKem768, state: HybridClientState, sReply: Uint8Array): Buffer;
  /** K = SHA-256(K_PQ || K_CL). */
  combine(kPq: Uint8Array, kCl: Uint8Array): Buffer;
  /** Raw X25519 output; throws on an all-zero result (low-order peer point). */
  x25519Shared(privateKey: KeyObject, peerPublic: Uint8Array): Buffer;
} = {
  clientInit: (kem) => hybrid.clientInit(kem),
  serverReply: (kem, cInit) => hybrid.serverReply(kem, cInit),
  clientSecret: (kem, state, sReply) => hybrid.clientSecret(kem, state, sReply),
  combine: (kPq, kCl) => hybrid.combine(kPq, kCl),
  x25519Shared: (privateKey, peerPublic) => hybrid.x25519Shared(privateKey, peerPublic),
};
