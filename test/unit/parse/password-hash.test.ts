import { describe, it, expect } from 'vitest';
import { formatPasswordHash, parsePasswordHash, PASSWORD_HASH_PATTERN } from '../../../src/parse/password-hash.js';

const salt = Buffer.from('0123456789abcdef');
const hash = Buffer.alloc(32, 7);
const text = `$scrypt$ln=15,r=8,p=1$${salt.toString('base64')}$${hash.toString('base64')}`;

describe('passwordHash format', () => {
  it('parses the hash-password format and writes it back the same', () => {
    const h = parsePasswordHash(text);
    expect(h).toEqual({ ln: 15, r: 8, p: 1, salt, hash });
    if (h instanceof Error) throw h;
    expect(formatPasswordHash(h)).toBe(text);
    expect(PASSWORD_HASH_PATTERN.test(text)).toBe(true);
  });

  it('refuses another format, out-of-range parameters and a short hash, saying which', () => {
    expect(parsePasswordHash('$2b$10$abc')).toEqual(new Error('expected "$scrypt$ln=…,r=…,p=…$salt$hash"'));
    expect(parsePasswordHash(text.replace('ln=15', 'ln=23'))).toEqual(new Error('scrypt parameters out of range (ln 1-22, r 1-32, p 1-16)'));
    expect(parsePasswordHash(text.replace('p=1', 'p=0'))).toEqual(new Error('scrypt parameters out of range (ln 1-22, r 1-32, p 1-16)'));
    expect(parsePasswordHash(`$scrypt$ln=15,r=8,p=1$${salt.toString('base64')}$${Buffer.alloc(8).toString('base64')}`)).toEqual(new Error('hash too short'));
  });
});
