/**
 * The SSH algorithms the server offers: two profiles and explicit lists.
 * - `compatible` (default): what OpenSSH 9.2's sshd offers, minus SHA-1 and minus what ssh2 cannot
 *   do as a server (diffie-hellman-group-exchange, umac), plus the hybrid post-quantum key exchange
 *   first. Old clients get in: libssh2 ≤ 1.10 (curl, PHP) needs the non-ETM hmac-sha2 MACs, jcraft
 *   JSch 0.1.5x needs an ECDSA host key, ecdh-sha2-nistp256 and hmac-sha2-256.
 * - `strict`: a set `ssh-audit` finds no fault with: no NIST curves (kex or host key), ETM MACs
 *   only, no 2048-bit DH group. Clients above that cannot do that set are locked out.
 * Client preference decides among what both sides offer, so the order matters little.
 */
import { ssh2Constants as constants, type Ssh2Constants } from './ssh2.js';
import { mlkem768x25519Supported, MLKEM768X25519_SHA256 } from './kex/mlkem768x25519.js';

export type AlgorithmProfile = 'compatible' | 'strict';
export const ALGORITHM_CATEGORIES = ['kex', 'hostKey', 'cipher', 'mac'] as const;
export type AlgorithmCategory = (typeof ALGORITHM_CATEGORIES)[number];
export type AlgorithmLists = Readonly<Record<AlgorithmCategory, readonly string[]>>;

const PQ = mlkem768x25519Supported() ? [MLKEM768X25519_SHA256] : [];

export const PROFILES: Readonly<Record<AlgorithmProfile, AlgorithmLists>> = {
  compatible: {
    kex: [...PQ, 'curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512', 'diffie-hellman-group14-sha256'],
    hostKey: ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'],
    cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'],
    mac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  },
  strict: {
    kex: [...PQ, 'curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512'],
    hostKey: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'],
    cipher: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'],
    mac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com'],
  },
};

const ssh2Constants: Ssh2Constants = constants;

/** What ssh2 can do as a server here, minus what it only does as a client or only with SHA-1. */
const SERVER_CANNOT = new Set(['diffie-hellman-group-exchange-sha256', 'diffie-hellman-group-exchange-sha1', 'diffie-hellman-group14-sha1', 'diffie-hellman-group1-sha1', 'ssh-rsa', 'ssh-dss', 'hmac-sha1', 'hmac-sha1-etm@openssh.com', 'hmac-md5', 'hmac-sha1-96', 'hmac-md5-96']);
export const SUPPORTED: AlgorithmLists = {
  kex: ssh2Constants.SUPPORTED_KEX.filter((a) => !SERVER_CANNOT.has(a)),
  hostKey: ssh2Constants.SUPPORTED_SERVER_HOST_KEY.filter((a) => !SERVER_CANNOT.has(a)),
  cipher: ssh2Constants.SUPPORTED_CIPHER,
  mac: ssh2Constants.SUPPORTED_MAC.filter((a) => !SERVER_CANNOT.has(a)),
};

/** Signature algorithms the server verifies for user keys (server-sig-algs): no SHA-1. */
export const USER_SIGNATURE_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'] as const;

export interface AlgorithmsSetting {
  profile: AlgorithmProfile;
  kex?: string[] | undefined;
  hostKey?: string[] | undefined;
  cipher?: string[] | undefined;
  mac?: string[] | undefined;
}

/** The lists a setting resolves to: the profile's, with any category given explicitly replaced. */
export function resolveAlgorithms(setting: AlgorithmsSetting): AlgorithmLists {
  const base = PROFILES[setting.profile];
  return {
    kex: setting.kex ?? base.kex,
    hostKey: setting.hostKey ?? base.hostKey,
    cipher: setting.cipher ?? base.cipher,
    mac: setting.mac ?? base.mac,
  };
}

/** Whether a host key of `keyType` can be offered under `hostKeyAlgos` (an RSA key as rsa-sha2-*). */
export function hostKeyUsable(keyType: string, hostKeyAlgos: readonly string[]): boolean {
  return keyType === 'ssh-rsa' ? hostKeyAlgos.some((a) => a.startsWith('rsa-sha2-')) : hostKeyAlgos.includes(keyType);
}

/** Names in `list` that this server cannot offer for `category` (for config errors). */
export function unsupported(category: AlgorithmCategory, list: readonly string[]): string[] {
  return list.filter((a) => !SUPPORTED[category].includes(a));
}
