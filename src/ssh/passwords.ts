/**
 * scrypt password hashing (format in src/parse/password-hash.ts). Verification runs on the thread
 * pool (crypto.scrypt) and compares fixed-length keys in constant time.
 */
import { randomBytes, scrypt, timingSafeEqual, createHmac } from 'node:crypto';
import { formatPasswordHash, type PasswordHash } from '../parse/password-hash.js';

const KEY_LEN = 32;

function derive(password: string | Buffer, salt: Buffer, ln: number, r: number, p: number, keyLen: number): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keyLen, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** A passwordHash value for the config (what `sftp-chroot hash-password` prints). */
export async function hashPassword(password: string, ln = 15): Promise<string> {
  return formatPasswordHash(await makePasswordHash(password, ln));
}

export async function makePasswordHash(password: string, ln: number): Promise<PasswordHash> {
  const salt = randomBytes(16);
  return { ln, r: 8, p: 1, salt, hash: await derive(password, salt, ln, 8, 1, KEY_LEN) };
}

/** Constant-time check of `candidate` against a stored hash. */
export async function verifyPassword(candidate: string, stored: PasswordHash): Promise<boolean> {
  const key = await derive(candidate, stored.salt, stored.ln, stored.r, stored.p, stored.hash.length);
  return timingSafeEqual(key, stored.hash);
}

/**
 * Remembers passwords that verified, as a keyed HMAC, so a returning user skips scrypt.
 * Only the correct password can hit the cache, so wrong passwords and unknown users always
 * pay the full scrypt cost and stay indistinguishable.
 */
export class VerifiedPasswordCache {
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Buffer>();
  #mac(user: string, password: string): Buffer {
    return createHmac('sha256', this.#key).update(user).update('\0').update(password).digest();
  }
  has(user: string, password: string): boolean {
    const known = this.#entries.get(user);
    return known !== undefined && timingSafeEqual(known, this.#mac(user, password));
  }
  remember(user: string, password: string): void {
    this.#entries.set(user, this.#mac(user, password));
  }
  forget(user: string): void {
    this.#entries.delete(user);
  }
}
