/** Host keys: read the configured files, or generate one ed25519 key on first start. */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { describeHostKey, type HostKeyInfo } from './keys.js';

export interface HostKey extends HostKeyInfo {
  readonly pem: Buffer;
  readonly path?: string;
  readonly generated: boolean;
}

export function generateHostKey(): { private: string; public: string } {
  const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'sftp-chroot host key' });
  return { private: pair.private, public: pair.public };
}

async function readKey(path: string): Promise<HostKey> {
  const pem = await readFile(path);
  const info = describeHostKey(pem);
  if (info instanceof Error) throw new Error(`host key ${path}: ${info.message}`);
  return { ...info, pem, path, generated: false };
}

export async function loadHostKeys(paths: readonly string[], keysDir: string): Promise<HostKey[]> {
  if (paths.length) return Promise.all(paths.map(readKey));
  const path = join(keysDir, 'ssh_host_ed25519_key');
  try {
    return [await readKey(path)];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const pair = generateHostKey();
  // wx: never overwrite a key another process just wrote.
  await writeFile(path, pair.private, { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  await writeFile(`${path}.pub`, pair.public + '\n', { mode: 0o644 }).catch(() => undefined);
  const key = await readKey(path);
  return [{ ...key, generated: true }];
}
