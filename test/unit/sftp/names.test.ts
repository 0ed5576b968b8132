import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { decodeName, encodeName, wireName } from '../../../src/sftp/names.js';
import { escapeText } from '../../../src/audit/escape.js';

describe('names are bytes (surrogate escape)', () => {
  it('valid UTF-8 decodes to the same string Node decodes, and encodes back to the same bytes', () => {
    for (const s of ['plain.txt', 'café.txt', '日本語', '😀 emoji', '', 'a\u{fffd}b (a real U+FFFD)']) {
      const b = Buffer.from(s, 'utf8');
      expect(decodeName(b)).toBe(s);
      expect(encodeName(decodeName(b)).equals(b)).toBe(true);
    }
  });

  it('each byte that is not UTF-8 becomes U+DC80–U+DCFF and comes back as that byte', () => {
    expect(decodeName(Buffer.from('up-\xbf.txt', 'latin1'))).toBe('up-\udcbf.txt');
    expect(decodeName(Buffer.from('caf\xe9.txt', 'latin1'))).toBe('caf\udce9.txt');
    expect(encodeName('up-\udcbf.txt')).toEqual(Buffer.from('up-\xbf.txt', 'latin1'));
  });

  it('two different byte names stay two different strings (no U+FFFD merging them)', () => {
    const a = decodeName(Buffer.from('up-\xbf.txt', 'latin1'));
    const b = decodeName(Buffer.from('up-\xfe.txt', 'latin1'));
    expect(a).not.toBe(b);
    expect(a).not.toContain('\ufffd');
  });

  it('overlong forms, encoded surrogates and truncated sequences are escaped bytewise, never decoded', () => {
    // C0 AF (overlong "/"), ED A0 80 (an encoded surrogate), E2 82 (truncated €), F4 90 80 80 (> U+10FFFF)
    for (const hex of ['c0af', 'eda080', 'e282', 'f4908080']) {
      const b = Buffer.from(hex, 'hex');
      const s = decodeName(b);
      expect([...s].every((c) => c.charCodeAt(0) >= 0xdc80 && c.charCodeAt(0) <= 0xdcff)).toBe(true);
      expect(encodeName(s).equals(b)).toBe(true);
    }
    // An overlong "/" must not become a path separator.
    expect(decodeName(Buffer.from('c0af', 'hex'))).not.toContain('/');
  });

  it('round-trips 5,000 random byte strings exactly', () => {
    for (let i = 0; i < 5000; i++) {
      const b = randomBytes(1 + (i % 40));
      const s = decodeName(b);
      expect(encodeName(s).equals(b), b.toString('hex')).toBe(true);
      expect(decodeName(encodeName(s))).toBe(s);
    }
  });

  it('a real astral character whose low surrogate lies in DC80–DCFF is not taken for an escaped byte', () => {
    const s = '\u{1F480}'; // 💀 = D83D DC80
    expect(encodeName(s)).toEqual(Buffer.from(s, 'utf8'));
    expect(wireName(s)).toBe(s);
  });

  it('wireName keeps plain names as strings and gives escaped ones as their bytes', () => {
    expect(wireName('a.txt')).toBe('a.txt');
    expect(wireName('up-\udcbf.txt')).toEqual(Buffer.from('up-\xbf.txt', 'latin1'));
  });

  it('text logs show an escaped byte as \\xNN of that byte, distinct from the code point U+00BF', () => {
    expect(escapeText('up-\udcbf.txt')).toBe('up-\\xbf.txt');
    expect(escapeText('up-\u00bf.txt')).toBe('up-\u00bf.txt');
    expect(escapeText('c1-\u0085')).toBe('c1-\\u{85}');
  });
});
