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
import type * as Ssh2 from 'ssh2';
import { mlkem768x25519Supported, MLKEM768X25519_SHA256 } from './kex/mlkem768x25519.js';
import type { AlgorithmLists, AlgorithmProfile, AlgorithmsSetting } from '../parse/algorithms.js';
import type { ServerConfig } from '../config/load.js';
import type { HostKey } from './host-keys.js';
import { ConfigError } from '../errors.js';

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

/** Signature algorithms the server verifies for user keys (server-sig-algs): no SHA-1. */
export const USER_SIGNATURE_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'] as const;

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

/** The ssh2 Server's config for these settings and host keys, and the keys it leaves out. */
export function ssh2ServerConfig(config: Pick<ServerConfig, 'algorithms' | 'banner'>, hostKeys: readonly HostKey[]): { ssh2: Ssh2.ServerConfig; notOffered: HostKey[] } {
  const algos = resolveAlgorithms(config.algorithms);
  // Only keys the algorithm lists can use are loaded: ssh2 offers every key it is given.
  const offered = hostKeys.filter((k) => hostKeyUsable(k.type, algos.hostKey));
  if (offered.length === 0) throw new ConfigError([{ path: 'algorithms.hostKey', message: `none of the host keys (${hostKeys.map((k) => k.type).join(', ')}) can be used with ${algos.hostKey.join(', ')}` }]);
  const ssh2 = {
    hostKeys: offered.map((k) => k.pem),
    algorithms: {
      kex: [...algos.kex] as Ssh2.KexAlgorithm[],
      cipher: [...algos.cipher] as Ssh2.CipherAlgorithm[],
      hmac: [...algos.mac] as Ssh2.MacAlgorithm[],
      // No compression: zlib before authentication is a decompression bomb.
      compress: ['none'],
      serverHostKey: algos.hostKey.filter((a) => offered.some((k) => hostKeyUsable(k.type, [a]))) as Ssh2.ServerHostKeyAlgorithm[],
    },
    ident: 'sftp-chroot',
    ...(config.banner !== undefined ? { banner: config.banner } : {}),
    // Patched ssh2 (server-sig-algs): exactly the signatures Authenticator verifies.
    serverSigAlgs: USER_SIGNATURE_ALGORITHMS.join(','),
  } as Ssh2.ServerConfig;
  return { ssh2, notOffered: hostKeys.filter((k) => !offered.includes(k)) };
}
