/**
 * Every connection that never logs in leaves exactly one `connection.close` record saying how far it
 * got (stage) and why it ended (reason); a connection that logs in leaves `session.close` instead.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Socket } from 'node:net';
import ssh2, { type ConnectConfig, type PasswordAuthMethod } from 'ssh2';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { fastSocket } from '../helpers/raw-sftp.js';
import type { AuditRecord } from '../../src/index.js';

const { Client } = ssh2;
type ConnectionClose = Extract<AuditRecord, { event: 'connection.close' }>;

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ config: { limits: { maxAuthTries: 3 } } });
});
afterAll(async () => {
  await s?.close();
});

const remoteOf = (sock: Socket) => `127.0.0.1:${sock.localPort}`;

/** The connection.close record of the connection from `remote`, after checking it is the only one. */
async function closeRecordOf(remote: string): Promise<ConnectionClose> {
  const r = (await s.events.waitFor((e) => e.event === 'connection.close' && e.remote === remote)) as ConnectionClose;
  // Both places that write the record (before and after identification) run on the socket's close.
  await new Promise((resolve) => setImmediate(resolve));
  expect(s.events.filter((e) => e.event === 'connection.close' && e.remote === remote)).toHaveLength(1);
  return r;
}

/** An ssh2 Client on a socket whose local port we know; resolves when it is ready or failed. */
async function ssh2Attempt(config: Partial<ConnectConfig>): Promise<{ remote: string; error: (Error & { code?: unknown; level?: string }) | undefined; client: InstanceType<typeof Client> }> {
  const sock = await fastSocket('127.0.0.1', s.port);
  const remote = remoteOf(sock);
  const client = new Client();
  const error = await new Promise<Error | undefined>((resolve) => {
    client.once('ready', () => resolve(undefined));
    client.once('error', resolve);
    client.once('close', () => resolve(new Error('closed with neither ready nor error')));
    client.connect({ ...s.connectOptions, sock, readyTimeout: 10_000, ...config });
  });
  client.on('error', () => undefined);
  return { remote, error, client };
}

describe('connection.close for connections that never logged in', () => {
  it('a client that closes without sending an SSH identification: stage ident', async () => {
    const sock = await fastSocket('127.0.0.1', s.port);
    const remote = remoteOf(sock);
    sock.end();
    const r = await closeRecordOf(remote);
    expect(r).toMatchObject({ stage: 'ident', reason: 'closed by the client before identifying' });
    expect(r.user).toBeUndefined();
    expect(r.client).toBeUndefined();
  });

  it('a client that identifies and closes during key exchange: stage key-exchange, with its identification', async () => {
    const sock = await fastSocket('127.0.0.1', s.port);
    const remote = remoteOf(sock);
    sock.write('SSH-2.0-probe_1.0\r\n');
    // The server sends its KEXINIT only once it has read ours: wait for a packet after its ident line.
    await new Promise<void>((resolve, reject) => {
      let got = Buffer.alloc(0);
      sock.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.includes('\r\n') && got.length > got.indexOf('\r\n') + 2 + 5) resolve();
      });
      sock.once('close', () => reject(new Error('closed before the server sent KEXINIT')));
    });
    sock.end();
    const r = await closeRecordOf(remote);
    expect(r).toMatchObject({ stage: 'key-exchange', reason: 'closed during key exchange', client: 'SSH-2.0-probe_1.0' });
  });

  it('a client with no key exchange in common: stage key-exchange, the reason names the error', async () => {
    const { remote, error } = await ssh2Attempt({ algorithms: { kex: ['diffie-hellman-group14-sha1'] } });
    expect(error?.message).toMatch(/no matching key exchange/i);
    const r = await closeRecordOf(remote);
    expect(r.stage).toBe('key-exchange');
    expect(r.reason).toMatch(/^error: .*no matching key exchange/i);
  });

  it('a client that fails one password and gives up: stage authentication, the user and one failed attempt', async () => {
    const oneTry: PasswordAuthMethod[] = [{ type: 'password', username: s.username, password: 'wrong' }];
    const { remote, error } = await ssh2Attempt({ authHandler: oneTry });
    expect(error?.message).toMatch(/All configured authentication methods failed/);
    const r = await closeRecordOf(remote);
    expect(r).toMatchObject({ stage: 'authentication', user: s.username, failedAttempts: 1, reason: 'closed by the client before logging in' });
  });

  it('a client that runs out of tries is told "Too many authentication failures" and the record says why', async () => {
    let tries = 0;
    const { remote, error } = await ssh2Attempt({
      authHandler: (_left, _partial, next) => {
        tries++;
        next({ type: 'password', username: s.username, password: `wrong-${tries}` });
      },
    });
    // DISCONNECT reason 2 (PROTOCOL_ERROR) with sshd's description, which ssh2 makes the error message.
    expect(error?.message).toBe('Too many authentication failures');
    expect(error?.code).toBe(2);
    const r = await closeRecordOf(remote);
    expect(r).toMatchObject({ stage: 'authentication', user: s.username, failedAttempts: 3, reason: 'too many authentication failures' });
  });

  it('a connection that logs in gets session.close and no connection.close', async () => {
    const { remote, error, client } = await ssh2Attempt({});
    expect(error).toBeUndefined();
    const open = await s.events.waitFor((e) => e.event === 'session.open' && e.remote === remote);
    client.end();
    await s.events.waitFor((e) => e.event === 'session.close' && e.sessionId === open.sessionId);
    expect(s.events.filter((e) => e.event === 'connection.close' && (e.remote === remote || e.sessionId === open.sessionId))).toEqual([]);
  });
});
