import { describe, it, expect } from 'vitest';
import { escapeText, formatRemote, splitRemote } from '../../../src/audit/escape.js';

describe('escapeText', () => {
  it('escapes control characters, backslashes and bidi overrides', () => {
    expect(escapeText('a\\b\u0007c\u202ed\ud800')).toBe('a\\x5cb\\x07c\\u{202e}d\\u{d800}');
    expect(escapeText('')).toBe('""');
  });

  it('writes a name byte that is not UTF-8 as that byte, and spaces as asked', () => {
    expect(escapeText('a \udcbf', { space: '_' })).toBe('a_\\xbf');
  });
});

describe('remote addresses', () => {
  it('formatRemote brackets IPv6, and splitRemote reads both forms back', () => {
    expect(formatRemote('192.0.2.7', 22)).toBe('192.0.2.7:22');
    expect(formatRemote('2001:db8::1', 22)).toBe('[2001:db8::1]:22');
    expect(formatRemote(undefined, undefined)).toBe('unknown:0');
    expect(splitRemote('[2001:db8::1]:22')).toEqual({ ip: '2001:db8::1', port: '22' });
    expect(splitRemote('192.0.2.7:22')).toEqual({ ip: '192.0.2.7', port: '22' });
  });
});
