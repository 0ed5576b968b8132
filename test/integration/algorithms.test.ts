/**
 * config.algorithms on the wire: ssh2's Client offering exactly one algorithm of a category
 * against the default (compatible) profile and the strict one.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import ssh2, { type Algorithms } from 'ssh2';
import { startTestServer, type TestServer } from '../../src/testing.js';

const { Client } = ssh2;

let compatible: TestServer;
let strict: TestServer;
beforeAll(async () => {
  [compatible, strict] = await Promise.all([startTestServer(), startTestServer({ config: { algorithms: 'strict' } })]);
});
afterAll(async () => {
  await Promise.all([compatible?.close(), strict?.close()]);
});

/** What libssh2 1.10 (curl, PHP) and jcraft JSch 0.1.55 can do: no ETM MAC, no GCM, no curve25519. */
const OLD_CLIENT: Algorithms = { kex: ['ecdh-sha2-nistp256'], cipher: ['aes128-ctr'], hmac: ['hmac-sha2-256'] };

/** Logs in offering only `algorithms`; resolves with the negotiated names, or rejects with ssh2's error. */
async function login(s: TestServer, algorithms: Algorithms): Promise<{ kex: string; cipher: string; mac: string }> {
  const o = s.connectOptions;
  const client = new Client();
  try {
    return await new Promise((resolve, reject) => {
      let agreed: { kex: string; cipher: string; mac: string } | undefined;
      client.on('handshake', (n) => (agreed = { kex: n.kex, cipher: n.cs.cipher, mac: n.cs.mac }));
      client.on('ready', () => resolve(agreed!));
      client.on('error', reject);
      client.connect({ ...o, algorithms });
    });
  } finally {
    client.end();
  }
}

describe('algorithms on the wire', () => {
  it('the default profile lets in a client that offers only ecdh-sha2-nistp256, aes128-ctr and hmac-sha2-256', async () => {
    expect(await login(compatible, OLD_CLIENT)).toEqual({ kex: 'ecdh-sha2-nistp256', cipher: 'aes128-ctr', mac: 'hmac-sha2-256' });
  });

  it('the strict profile refuses a client whose only key exchange is ecdh-sha2-nistp256', async () => {
    await expect(login(strict, { kex: ['ecdh-sha2-nistp256'] })).rejects.toThrow(/no matching key exchange/i);
  });

  it('the strict profile refuses a client whose only MAC is hmac-sha2-256 (encrypt-and-MAC)', async () => {
    await expect(login(strict, { cipher: ['aes128-ctr'], hmac: ['hmac-sha2-256'] })).rejects.toThrow(/no matching .*MAC/i);
  });

  it('the strict profile lets in the same client once it offers an ETM MAC and curve25519', async () => {
    expect(await login(strict, { kex: ['curve25519-sha256'], cipher: ['aes128-ctr'], hmac: ['hmac-sha2-256-etm@openssh.com'] })).toEqual({
      kex: 'curve25519-sha256',
      cipher: 'aes128-ctr',
      mac: 'hmac-sha2-256-etm@openssh.com',
    });
  });
});
