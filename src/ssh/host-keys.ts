/**
 * Host keys: read the configured files, or — as sshd's first start does — use or generate one key
 * of each type in keysDir: ed25519 (modern clients), ECDSA P-256 (clients that know no ed25519,
 * e.g. jcraft JSch 0.1.5x embedded in many Java products), RSA 3072 (clients that know neither).
 * Under `algorithms: "strict"` the ECDSA key is generated but not offered.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ssh2 } from './ssh2.js';
import { describeHostKey, type HostKeyInfo } from '../parse/keys.js';

export interface HostKey extends HostKeyInfo {
  readonly pem: Buffer;
  readonly path?: string;
  readonly generated: boolean;
}

export const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const;
export type HostKeyType = (typeof HOST_KEY_TYPES)[number];

/** sshd's sizes: ECDSA 256, RSA 3072. */
const BITS: Record<HostKeyType, number | undefined> = { ed25519: undefined, ecdsa: 256, rsa: 3072 };

export interface KeyPair {
  private: string;
  public: string;
}

/** One new host key pair in OpenSSH format (RSA takes a second or so, on the thread pool). */
export function generateHostKey(type: HostKeyType = 'ed25519', comment = 'sftp-chroot host key'): Promise<KeyPair> {
  const bits = BITS[type];
  return new Promise((resolve, reject) =>
    ssh2.utils.generateKeyPair(type, { comment, ...(bits !== undefined ? { bits } : {}) }, (err, pair) => (err ? reject(err) : resolve({ private: pair.private, public: pair.public }))),
  );
}

/** The file name sshd uses for a generated key of this type. */
export function hostKeyFile(type: HostKeyType): string {
  return `ssh_host_${type}_key`;
}

async function readKey(path: string): Promise<HostKey> {
  const pem = await readFile(path);
  const info = describeHostKey(pem);
  if (info instanceof Error) throw new Error(`host key ${path}: ${info.message}`);
  return { ...info, pem, path, generated: false };
}

/** Writes a new key of `type` to `path` (and `path.pub`); never overwrites one another process just wrote. */
export async function writeHostKey(path: string, type: HostKeyType): Promise<KeyPair> {
  const pair = await generateHostKey(type);
  await writeFile(path, pair.private, { mode: 0o600, flag: 'wx' });
  await writeFile(`${path}.pub`, pair.public + '\n', { mode: 0o644 }).catch(() => undefined);
  return pair;
}

async function loadOrGenerate(keysDir: string, type: HostKeyType): Promise<HostKey> {
  const path = join(keysDir, hostKeyFile(type));
  try {
    return await readKey(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const written = await writeHostKey(path, type).then(
    () => true,
    (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
      return false;
    },
  );
  const key = await readKey(path);
  return { ...key, generated: written };
}

export async function loadHostKeys(paths: readonly string[], keysDir: string): Promise<HostKey[]> {
  if (paths.length) return Promise.all(paths.map(readKey));
  // One at a time: with "wx" two workers starting together still end up with the same keys.
  const keys: HostKey[] = [];
  for (const type of HOST_KEY_TYPES) keys.push(await loadOrGenerate(keysDir, type));
  return keys;
}
