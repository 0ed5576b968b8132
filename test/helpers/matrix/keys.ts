/**
 * The clients' user keys, made with ssh-keygen into a directory, with the copies other clients need:
 * PuTTY's .ppk (puttygen) and PEM (JSch 0.1.5x reads neither .ppk nor OpenSSH's own format).
 * `wrong` is a key no server knows (ecdsa, so that every client can load it).
 */
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuthCell } from './cells.js';
import { run } from './run.js';

export type KeyName = 'ed25519' | 'rsa' | 'ecdsa' | 'wrong';

export interface ClientKeys {
  /** OpenSSH-format private key files (mode 0600); the public line is in `<file>.pub`. */
  readonly ed25519: string;
  readonly rsa: string;
  readonly ecdsa: string;
  readonly wrong: string;
  /** The same keys as PuTTY .ppk files. */
  readonly ppk: Readonly<Record<KeyName, string>>;
  /** PEM copies (rsa, ecdsa, wrong; ed25519 has no PEM form). */
  readonly pem: Readonly<Record<Exclude<KeyName, 'ed25519'>, string>>;
  /** authorized_keys lines of the keys the server should accept (not `wrong`). */
  readonly authorized: readonly string[];
}

const SPEC: Record<KeyName, string[]> = {
  ed25519: ['-t', 'ed25519'],
  rsa: ['-t', 'rsa', '-b', '2048'],
  ecdsa: ['-t', 'ecdsa', '-b', '256'],
  wrong: ['-t', 'ecdsa', '-b', '256'],
};

async function must(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
}

async function makeKey(dir: string, name: KeyName): Promise<{ file: string; ppk: string; pem?: string }> {
  const file = join(dir, `id_${name}`);
  await must('ssh-keygen', ['-q', ...SPEC[name], '-N', '', '-C', `matrix-${name}`, '-f', file]);
  const ppk = `${file}.ppk`;
  await must('puttygen', [file, '-O', 'private', '-o', ppk]);
  if (name === 'ed25519') return { file, ppk };
  const pem = `${file}.pem`;
  await copyFile(file, pem);
  await must('ssh-keygen', ['-q', '-p', '-N', '', '-m', 'PEM', '-f', pem]);
  return { file, ppk, pem };
}

export async function makeClientKeys(dir: string): Promise<ClientKeys> {
  const names: KeyName[] = ['ed25519', 'rsa', 'ecdsa', 'wrong'];
  const made = await Promise.all(names.map((n) => makeKey(dir, n)));
  const by = Object.fromEntries(names.map((n, i) => [n, made[i]!])) as Record<KeyName, { file: string; ppk: string; pem?: string }>;
  const authorized = await Promise.all((['ed25519', 'rsa', 'ecdsa'] as const).map(async (n) => (await readFile(`${by[n].file}.pub`, 'utf8')).trim()));
  return {
    ed25519: by.ed25519.file,
    rsa: by.rsa.file,
    ecdsa: by.ecdsa.file,
    wrong: by.wrong.file,
    ppk: { ed25519: by.ed25519.ppk, rsa: by.rsa.ppk, ecdsa: by.ecdsa.ppk, wrong: by.wrong.ppk },
    pem: { rsa: by.rsa.pem!, ecdsa: by.ecdsa.pem!, wrong: by.wrong.pem! },
    authorized,
  };
}

const KEY_OF: Partial<Record<AuthCell, KeyName>> = {
  ed25519: 'ed25519',
  rsa: 'rsa',
  'rsa-sha2-256': 'rsa',
  'rsa-sha2-512': 'rsa',
  ecdsa: 'ecdsa',
  'wrongkey-then-password': 'wrong',
};

/** The key file an auth cell offers, in the format a client reads; undefined for password cells. */
export function keyFileFor(keys: ClientKeys, cell: AuthCell, format: 'openssh' | 'pem' | 'ppk' = 'openssh'): string | undefined {
  const name = KEY_OF[cell];
  if (!name) return undefined;
  if (format === 'ppk') return keys.ppk[name];
  if (format === 'pem' && name !== 'ed25519') return keys.pem[name];
  return keys[name];
}
