import { describe, it, expect } from 'vitest';
import { PROFILES, resolveAlgorithms, hostKeyUsable, ssh2ServerConfig } from '../../../src/ssh/algorithms.js';
import { ALGORITHM_CATEGORIES, unsupported, type AlgorithmLists } from '../../../src/parse/algorithms.js';
import { mlkem768x25519Supported } from '../../../src/ssh/kex/mlkem768x25519.js';
import { ConfigError } from '../../../src/errors.js';

/** SHA-1 in any role: the *-sha1 names, hmac-sha1*, and the ssh-rsa (SHA-1) signature. */
const SHA1 = /sha1|^ssh-rsa$/;
const all = (l: AlgorithmLists) => ALGORITHM_CATEGORIES.flatMap((c) => l[c]);

describe('resolveAlgorithms', () => {
  it('the compatible profile (default) lets in libssh2 1.10 and JSch 0.1.55 and offers no SHA-1', () => {
    const a = resolveAlgorithms({ profile: 'compatible' });
    expect(a).toEqual(PROFILES.compatible);
    // What those clients need: non-ETM hmac-sha2, aes*-ctr, ecdh-sha2-nistp256 and an ECDSA host key.
    expect(a.mac).toEqual(expect.arrayContaining(['hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha2-256-etm@openssh.com']));
    expect(a.cipher).toEqual(expect.arrayContaining(['aes128-ctr', 'aes256-ctr', 'chacha20-poly1305@openssh.com']));
    expect(a.kex).toEqual(expect.arrayContaining(['curve25519-sha256', 'ecdh-sha2-nistp256', 'diffie-hellman-group14-sha256']));
    expect(a.hostKey).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256']);
    expect(all(a).filter((n) => SHA1.test(n))).toEqual([]);
  });

  it('the strict profile has no NIST curve, no encrypt-and-MAC, no 2048-bit group and no SHA-1', () => {
    const a = resolveAlgorithms({ profile: 'strict' });
    expect(a).toEqual(PROFILES.strict);
    expect(all(a).filter((n) => /nistp/.test(n))).toEqual([]);
    expect(a.mac.filter((m) => !m.endsWith('-etm@openssh.com'))).toEqual([]);
    expect(a.kex).not.toContain('diffie-hellman-group14-sha256');
    expect(a.hostKey).toEqual(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256']);
    expect(all(a).filter((n) => SHA1.test(n))).toEqual([]);
  });

  it('both profiles put the post-quantum hybrid first where this Node can run it', () => {
    for (const profile of ['compatible', 'strict'] as const) {
      const kex = resolveAlgorithms({ profile }).kex;
      if (mlkem768x25519Supported()) expect(kex[0]).toBe('mlkem768x25519-sha256');
      else expect(kex).not.toContain('mlkem768x25519-sha256');
    }
  });

  it('every name in both profiles is one this server can offer', () => {
    for (const profile of ['compatible', 'strict'] as const) {
      for (const c of ALGORITHM_CATEGORIES) expect(unsupported(c, PROFILES[profile][c])).toEqual([]);
    }
  });

  it('a category given explicitly replaces only that list of the profile', () => {
    const a = resolveAlgorithms({ profile: 'strict', mac: ['hmac-sha2-512-etm@openssh.com'] });
    expect(a.mac).toEqual(['hmac-sha2-512-etm@openssh.com']);
    expect(a.kex).toEqual(PROFILES.strict.kex);
    expect(a.hostKey).toEqual(PROFILES.strict.hostKey);
    expect(a.cipher).toEqual(PROFILES.strict.cipher);
    const b = resolveAlgorithms({ profile: 'compatible', kex: ['curve25519-sha256'] });
    expect(b).toEqual({ ...PROFILES.compatible, kex: ['curve25519-sha256'] });
  });

  it('an RSA host key is usable under rsa-sha2-* only, never as SHA-1 ssh-rsa', () => {
    expect(hostKeyUsable('ssh-rsa', ['ssh-ed25519', 'rsa-sha2-256'])).toBe(true);
    expect(hostKeyUsable('ssh-rsa', ['ssh-ed25519', 'ssh-rsa'])).toBe(false);
    expect(hostKeyUsable('ecdsa-sha2-nistp256', PROFILES.strict.hostKey)).toBe(false);
    expect(hostKeyUsable('ssh-ed25519', PROFILES.strict.hostKey)).toBe(true);
  });

  it('the ssh2 config offers only host keys the lists can use, and says which it left out', () => {
    const key = (type: string) => ({ type, fingerprint: `SHA256:${type}`, pem: Buffer.from(type), generated: true });
    const [ed, ecdsa] = [key('ssh-ed25519'), key('ecdsa-sha2-nistp256')];
    const { ssh2, notOffered } = ssh2ServerConfig({ algorithms: { profile: 'strict' }, banner: undefined }, [ed, ecdsa]);
    expect(ssh2.hostKeys).toEqual([ed.pem]);
    expect(ssh2.algorithms?.serverHostKey).toEqual(['ssh-ed25519']);
    expect(ssh2.algorithms?.compress).toEqual(['none']);
    expect(notOffered).toEqual([ecdsa]);
    expect(() => ssh2ServerConfig({ algorithms: { profile: 'strict' }, banner: undefined }, [ecdsa])).toThrow(ConfigError);
  });
});
