/**
 * SSH algorithm names a config may list: what the bundled ssh2 implements as a server, minus SHA-1
 * and what it only does as a client. The profiles and the ssh2 server config are in src/ssh/algorithms.ts.
 */
import { bundle } from '../vendor/ssh2-bundle.js';

export type AlgorithmProfile = 'compatible' | 'strict';
export const ALGORITHM_CATEGORIES = ['kex', 'hostKey', 'cipher', 'mac'] as const;
export type AlgorithmCategory = (typeof ALGORITHM_CATEGORIES)[number];
export type AlgorithmLists = Readonly<Record<AlgorithmCategory, readonly string[]>>;

/** The `algorithms` setting: a profile, with any category given explicitly replacing the profile's list. */
export interface AlgorithmsSetting {
  profile: AlgorithmProfile;
  kex?: string[] | undefined;
  hostKey?: string[] | undefined;
  cipher?: string[] | undefined;
  mac?: string[] | undefined;
}

const SERVER_CANNOT = new Set(['diffie-hellman-group-exchange-sha256', 'diffie-hellman-group-exchange-sha1', 'diffie-hellman-group14-sha1', 'diffie-hellman-group1-sha1', 'ssh-rsa', 'ssh-dss', 'hmac-sha1', 'hmac-sha1-etm@openssh.com', 'hmac-md5', 'hmac-sha1-96', 'hmac-md5-96']);
const constants = bundle.constants;
export const SUPPORTED: AlgorithmLists = {
  kex: constants.SUPPORTED_KEX.filter((a) => !SERVER_CANNOT.has(a)),
  hostKey: constants.SUPPORTED_SERVER_HOST_KEY.filter((a) => !SERVER_CANNOT.has(a)),
  cipher: constants.SUPPORTED_CIPHER,
  mac: constants.SUPPORTED_MAC.filter((a) => !SERVER_CANNOT.has(a)),
};

/** Names in `list` that this server cannot offer for `category` (for config errors). */
export function unsupported(category: AlgorithmCategory, list: readonly string[]): string[] {
  return list.filter((a) => !SUPPORTED[category].includes(a));
}
