import { describe, it, expect } from 'vitest';
import { hashPassword, makePasswordHash, verifyPassword, VerifiedPasswordCache } from '../../../src/ssh/passwords.js';
import { parsePasswordHash } from '../../../src/parse/password-hash.js';

describe('passwords', () => {
  it('hashPassword writes a passwordHash the config accepts, and it verifies only the right password', async () => {
    const text = await hashPassword('s3cret', 10);
    expect(text).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$/);
    const stored = parsePasswordHash(text);
    if (stored instanceof Error) throw stored;
    expect(await verifyPassword('s3cret', stored)).toBe(true);
    expect(await verifyPassword('s3cret ', stored)).toBe(false);
  });

  it('two hashes of one password differ (fresh salt)', async () => {
    const [a, b] = await Promise.all([makePasswordHash('pw', 10), makePasswordHash('pw', 10)]);
    expect(a.salt.equals(b.salt)).toBe(false);
    expect(a.hash.equals(b.hash)).toBe(false);
  });

  it('the verified-password cache remembers a user and password pair, and forgets it', () => {
    const cache = new VerifiedPasswordCache();
    cache.remember('alice', 'pw');
    expect(cache.has('alice', 'pw')).toBe(true);
    expect(cache.has('alice', 'other')).toBe(false);
    expect(cache.has('bob', 'pw')).toBe(false);
    cache.forget('alice');
    expect(cache.has('alice', 'pw')).toBe(false);
  });
});
