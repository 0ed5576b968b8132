/**
 * Account lifecycle through real logins: a disabled or expired account is refused with its own
 * auth.failure reason (and sshd's words in the auth log), and a running session ends when a reload
 * disables the account or when its expiresAt passes, while other users carry on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer, type TestUserOptions } from '../../src/testing.js';
import { connect, type SftpClient } from '../helpers/sftp-client.js';

const open: { end(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.end().catch(() => undefined);
});

async function start(users: TestUserOptions[]): Promise<TestServer> {
  const s = await startTestServer({ users });
  open.push({ end: () => s.close() });
  return s;
}

async function login(s: TestServer, i: number, how: 'password' | 'key' = 'password'): Promise<SftpClient> {
  const u = s.users[i]!;
  const { password: _, ...keyOnly } = s.connectOptions;
  const c = await connect(how === 'password' ? { ...s.connectOptions, username: u.username, password: u.password } : { ...keyOnly, username: u.username, privateKey: u.privateKey });
  open.push(c);
  return c;
}

const ended = (c: SftpClient) => new Promise<void>((resolve) => c.conn.once('close', () => resolve()));

describe('account lifecycle', () => {
  it('a disabled user cannot log in by password or key; auth.failure says account-disabled', async () => {
    const s = await start([{ username: 'alice', disabled: true }, { username: 'bob' }]);
    await expect(login(s, 0)).rejects.toThrow(/authentication methods failed/);
    await expect(login(s, 0, 'key')).rejects.toThrow(/authentication methods failed/);
    const failures = s.events.ofType('auth.failure').filter((e) => e.user === 'alice');
    expect(failures.map((e) => [e.method, e.reason])).toEqual(expect.arrayContaining([['password', 'account-disabled'], ['publickey', 'account-disabled']]));
    expect(s.events.ofType('auth.success').some((e) => e.user === 'alice')).toBe(false);
    await (await login(s, 1)).stat('/');
  });

  it('a wrong password for a disabled user is a bad password, not a hint that the account exists', async () => {
    const s = await start([{ username: 'alice', disabled: true }]);
    await expect(connect(s, { password: 'wrong' })).rejects.toThrow(/authentication methods failed/);
    expect(s.events.ofType('auth.failure').map((e) => e.reason)).toEqual(['bad-password']);
  });

  it('an expired user cannot log in; one whose expiry is ahead can', async () => {
    const s = await start([
      { username: 'past', expiresAt: '2020-01-01' },
      { username: 'future', expiresAt: new Date(Date.now() + 3600_000).toISOString() },
    ]);
    await expect(login(s, 0)).rejects.toThrow(/authentication methods failed/);
    expect(s.events.ofType('auth.failure').map((e) => [e.user, e.reason])).toEqual([['past', 'account-expired']]);
    await (await login(s, 1)).stat('/');
  });

  it('a reload that disables a user ends that user\'s sessions, logged, and no one else\'s', async () => {
    const s = await start([{ username: 'alice' }, { username: 'bob' }]);
    const alice = await login(s, 0);
    const bob = await login(s, 1);
    const aliceEnded = ended(alice);
    await s.server.reload({ ...s.server.config, users: s.server.config.users.map((u) => (u.username === 'alice' ? { ...u, disabled: true } : u)) });
    await aliceEnded;
    const close = await s.events.waitFor('session.close', (e) => e.user === 'alice');
    expect(close.reason).toBe('account disabled');
    await bob.stat('/');
    expect(s.events.ofType('session.close').filter((e) => e.user === 'bob')).toEqual([]);
    await expect(login(s, 0)).rejects.toThrow(/authentication methods failed/);
  });

  it('a reload that sets an expiry in the past ends the session with reason account expired', async () => {
    const s = await start([{ username: 'alice' }]);
    const alice = await login(s, 0);
    const aliceEnded = ended(alice);
    await s.server.reload({ ...s.server.config, users: s.server.config.users.map((u) => ({ ...u, expiresAt: Date.now() - 1 })) });
    await aliceEnded;
    expect((await s.events.waitFor('session.close')).reason).toBe('account expired');
  });

  it('a session ends by itself when its expiresAt passes, mid-upload, leaving no partial file', async () => {
    const s = await start([{ username: 'alice' }]);
    const alice = await login(s, 0);
    const aliceEnded = ended(alice);
    const h = await alice.open('/cut.bin', 0x02 | 0x08 | 0x10);
    await alice.write(h, 0, Buffer.alloc(1024, 1));
    // Set after the login and the first WRITE, so a slow machine cannot refuse the login instead.
    await s.server.reload({ ...s.server.config, users: s.server.config.users.map((u) => ({ ...u, expiresAt: Date.now() + 200 })) });
    expect(s.events.ofType('session.close')).toEqual([]);
    await aliceEnded;
    expect((await s.events.waitFor('session.close')).reason).toBe('account expired');
    expect(await s.events.waitFor('transfer')).toMatchObject({ path: '/cut.bin', status: 'incomplete' });
    expect(await s.exists('/cut.bin')).toBe(false);
  });
});
