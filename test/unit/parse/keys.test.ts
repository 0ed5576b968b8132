import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { ssh2 } from '../../../src/ssh/ssh2.js';
import { authorizedKeyLines, describeHostKey, fingerprintOf, parseAuthorizedKey } from '../../../src/parse/keys.js';

const pair = ssh2.utils.generateKeyPairSync('ed25519');

describe('parseAuthorizedKey', () => {
  it('strips options before the key and keeps the comment', () => {
    const k = parseAuthorizedKey(`restrict,from="10.0.0.0/8" ${pair.public} alice@laptop`);
    if (k instanceof Error) throw k;
    expect(k).toMatchObject({ type: 'ssh-ed25519', comment: 'alice@laptop' });
    expect(k.blob.equals(Buffer.from(pair.public.split(' ')[1]!, 'base64'))).toBe(true);
  });

  it('verifies a signature made with the key and refuses one over other data', () => {
    const k = parseAuthorizedKey(pair.public);
    if (k instanceof Error) throw k;
    const priv = ssh2.utils.parseKey(pair.private);
    if (priv instanceof Error || Array.isArray(priv)) throw new Error('unreadable test key');
    const sig = priv.sign(Buffer.from('data'));
    expect(k.verify(Buffer.from('data'), sig)).toBe(true);
    expect(k.verify(Buffer.from('other'), sig)).toBe(false);
  });

  it('says what is wrong with a line that holds no usable key', () => {
    expect(parseAuthorizedKey('hello')).toEqual(new Error('expected an OpenSSH public key line such as "ssh-ed25519 AAAA… comment"'));
    expect(parseAuthorizedKey('sk-ssh-ed25519@openssh.com AAAA')).toEqual(new Error('security-key (sk-*) keys are not supported'));
    expect(parseAuthorizedKey('ssh-ed25519 AAAA')).toBeInstanceOf(Error);
  });
});

describe('key helpers', () => {
  it("fingerprintOf is OpenSSH's SHA256: with unpadded base64", () => {
    const blob = Buffer.from('blob');
    expect(fingerprintOf(blob)).toBe('SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, ''));
    expect(fingerprintOf(blob)).not.toMatch(/=$/);
  });

  it('authorizedKeyLines skips blank lines and comments, CRLF or LF', () => {
    expect(authorizedKeyLines('# c\r\n\r\nssh-ed25519 A\n  # indented\nssh-rsa B\n')).toEqual(['ssh-ed25519 A', 'ssh-rsa B']);
  });

  it('describeHostKey names the type and fingerprint of a private key and refuses a public one', () => {
    const info = describeHostKey(pair.private);
    const pub = parseAuthorizedKey(pair.public);
    if (info instanceof Error || pub instanceof Error) throw new Error('unreadable test key');
    expect(info).toEqual({ type: 'ssh-ed25519', fingerprint: pub.fingerprint });
    expect(describeHostKey(pair.public)).toEqual(new Error('this is a public key; hostKeys needs the private key file'));
    expect(describeHostKey('garbage')).toBeInstanceOf(Error);
  });
});
