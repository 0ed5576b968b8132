import { describe, it, expect } from 'vitest';
import { ssh2 } from '../../../src/ssh/ssh2.js';
import { Authenticator } from '../../../src/ssh/auth.js';
import { validateConfig } from '../../../src/config/load.js';
import { hashPassword } from '../../../src/ssh/passwords.js';

const alice = ssh2.utils.generateKeyPairSync('ed25519');
const other = ssh2.utils.generateKeyPairSync('ed25519');
const signer = ssh2.utils.parseKey(alice.private);
if (signer instanceof Error || Array.isArray(signer)) throw new Error('unreadable test key');
const blobOf = (pub: string) => Buffer.from(pub.split(' ')[1]!, 'base64');

async function authenticator(): Promise<Authenticator> {
  const config = validateConfig(
    {
      users: [
        { username: 'alice', passwordHash: await hashPassword('right', 10), authorizedKeys: [alice.public], root: '/srv/a' },
        { username: 'plain', password: 'pw', root: '/srv/p' },
        { username: 'keyonly', authorizedKeys: [alice.public], root: '/srv/k' },
      ],
    },
    { baseDir: '/', checkFiles: false },
  );
  return new Authenticator(config.users, 10);
}

describe('Authenticator', () => {
  it('accepts the right password, hashed or plain in the config, and says why it refuses', async () => {
    const auth = await authenticator();
    expect(await auth.password('alice', 'right')).toEqual({ ok: true });
    expect(await auth.password('alice', 'right')).toEqual({ ok: true }); // from the cache
    expect(await auth.password('plain', 'pw')).toEqual({ ok: true });
    expect(await auth.password('alice', 'wrong')).toEqual({ ok: false, reason: 'bad-password' });
    expect(await auth.password('ghost', 'right')).toEqual({ ok: false, reason: 'unknown-user' });
    expect(await auth.password('keyonly', 'x')).toEqual({ ok: false, reason: 'method-not-allowed' });
  });

  it('answers a key query (no signature) and accepts only a signature the key verifies', async () => {
    const auth = await authenticator();
    const data = blobOf(alice.public);
    expect(auth.publickey('alice', { algo: 'ssh-ed25519', data })).toMatchObject({ ok: true, key: { type: 'ssh-ed25519' } });
    const blob = Buffer.from('session data');
    expect(auth.publickey('alice', { algo: 'ssh-ed25519', data, blob, signature: signer.sign(blob) })).toMatchObject({ ok: true });
    expect(auth.publickey('alice', { algo: 'ssh-ed25519', data, blob, signature: signer.sign(Buffer.from('else')) })).toEqual({ ok: false, reason: 'bad-key' });
  });

  it('refuses a key that is not authorized, a user with no keys, an unknown user and a SHA-1 RSA signature', async () => {
    const auth = await authenticator();
    expect(auth.publickey('alice', { algo: 'ssh-ed25519', data: blobOf(other.public) })).toEqual({ ok: false, reason: 'bad-key' });
    expect(auth.publickey('plain', { algo: 'ssh-ed25519', data: blobOf(alice.public) })).toEqual({ ok: false, reason: 'method-not-allowed' });
    expect(auth.publickey('ghost', { algo: 'ssh-ed25519', data: blobOf(alice.public) })).toEqual({ ok: false, reason: 'unknown-user' });
    expect(auth.publickey('alice', { algo: 'ssh-rsa', data: Buffer.alloc(1), signature: Buffer.alloc(1) })).toEqual({ ok: false, reason: 'bad-key' });
  });
});
