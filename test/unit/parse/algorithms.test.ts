import { describe, it, expect } from 'vitest';
import { SUPPORTED, unsupported } from '../../../src/parse/algorithms.js';

describe('algorithm names', () => {
  it('SHA-1 and what ssh2 cannot serve are not supported names', () => {
    expect(SUPPORTED.mac).not.toContain('hmac-sha1');
    expect(SUPPORTED.kex).not.toContain('diffie-hellman-group-exchange-sha256');
    expect(SUPPORTED.kex).not.toContain('diffie-hellman-group14-sha1');
    expect(SUPPORTED.hostKey).not.toContain('ssh-rsa');
  });

  it('unsupported() returns exactly the names a category cannot offer, in their order', () => {
    expect(unsupported('mac', ['hmac-sha2-256', 'hmac-md5', 'umac-64@openssh.com'])).toEqual(['hmac-md5', 'umac-64@openssh.com']);
    expect(unsupported('cipher', ['aes128-ctr'])).toEqual([]);
  });
});
