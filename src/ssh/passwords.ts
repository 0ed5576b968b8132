/**
 * scrypt password hashes: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>`.
 * Verification runs on the thread pool (crypto.scrypt) and compares fixed-length keys in constant time.
 */
import { randomBytes, scrypt, timingSafeEqual, createHmac } from 'node:crypto';

export interface PasswordHash {
  readonly ln: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

const KEY_LEN = 32;
const FORMAT = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*)$/;

export function parsePasswordHash(text: string): PasswordHash | Error {
  const m = FORMAT.exec(text);
  if (!m) return new Error('expected "$scrypt$ln=…,r=…,p=…$salt$hash"');
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 1 || ln > 22 || r < 1 || r > 32 || p < 1 || p > 16) return new Error('scrypt parameters out of range (ln 1-22, r 1-32, p 1-16)');
  const hash = Buffer.from(m[5] ?? '', 'base64');
  if (hash.length < 16) return new Error('hash too short');
  return { ln, r, p, salt: Buffer.from(m[4] ?? '', 'base64'), hash };
}

function derive(password: string | Buffer, salt: Buffer, ln: number, r: number, p: number, keyLen: number): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keyLen, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string, ln = 15): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, ln, 8, 1, KEY_LEN);
  return `$scrypt$ln=${ln},r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
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
