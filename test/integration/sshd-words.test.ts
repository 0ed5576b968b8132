/**
 * What clients print comes from sshd's words: forwarding refusals, the keyboard-interactive prompt,
 * the DISCONNECT text at shutdown.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import ssh2, { type ClientChannel, type KeyboardInteractiveAuthMethod, type KeyboardInteractiveCallback, type Prompt } from 'ssh2';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { connectClient } from '../helpers/raw-sftp.js';
import { clientFiles, sshOptions } from '../helpers/openssh.js';

const { Client } = ssh2;

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

describe("sshd's words", () => {
  it('a direct-tcpip channel is refused "administratively prohibited" (reason 1) with the text "open failed"', async () => {
    const client = await connectClient(s);
    try {
      const err = await new Promise<Error & { reason?: unknown }>((resolve, reject) =>
        client.forwardOut('127.0.0.1', 40000, '127.0.0.1', 9, (e: Error | undefined, ch: ClientChannel) => {
          if (e) return resolve(e);
          ch.destroy();
          reject(new Error('direct-tcpip was accepted'));
        }),
      );
      expect(err.reason).toBe(1);
      expect(err.message).toBe('(SSH) Channel open failure: open failed');
      await s.events.waitFor((e) => e.event === 'request.refused' && e.what === 'direct-tcpip' && e.detail === '127.0.0.1:9');
    } finally {
      client.end();
    }
  });

  it('OpenSSH `ssh -N -L` prints "administratively prohibited" when a forwarded connection is refused', async () => {
    const files = await clientFiles(s);
    const local = join(files.dir, 'fwd.sock');
    // -o takes the first value given: INFO before sshOptions' LogLevel=ERROR (the refusal is logged at INFO).
    const args = ['-o', 'LogLevel=INFO', ...sshOptions(files), '-N', '-L', `${local}:127.0.0.1:9`, '-p', String(s.port), `${s.username}@127.0.0.1`];
    const child = spawn('ssh', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const refused = new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/open failed/.test(stderr)) resolve();
      });
      child.on('exit', (code) => reject(new Error(`ssh exited (${code}) before the refusal: ${stderr}`)));
    });
    refused.catch(() => undefined); // awaited below; not an unhandled rejection if the test fails earlier
    try {
      for (let i = 0; i < 500 && !existsSync(local) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 20));
      expect(existsSync(local), `ssh never listened on ${local}: ${stderr}`).toBe(true);
      const conn = netConnect(local);
      conn.on('error', () => undefined);
      await refused;
      conn.destroy();
      expect(stderr).toMatch(/open failed: administratively prohibited: open failed/);
    } finally {
      child.kill();
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
      await files.cleanup();
    }
  });

  it('the keyboard-interactive prompt has no name and no instructions, just "Password: "', async () => {
    let seen: { name: string; instructions: string; prompts: Prompt[] } | undefined;
    const prompt = (name: string, instructions: string, _lang: string, prompts: Prompt[], finish: KeyboardInteractiveCallback) => {
      seen = { name, instructions, prompts };
      finish([s.password]);
    };
    const methods: KeyboardInteractiveAuthMethod[] = [{ type: 'keyboard-interactive', username: s.username, prompt }];
    const client = await connectClient(s, { authHandler: methods });
    client.end();
    expect(seen).toEqual({ name: '', instructions: '', prompts: [{ prompt: 'Password: ', echo: false }] });
    await s.events.waitFor((e) => e.event === 'auth.success' && e.method === 'keyboard-interactive');
  });

  it('server.close() tells connected clients "Server shutting down" in its DISCONNECT', async () => {
    const own = await startTestServer();
    const debug: string[] = [];
    const client = new Client();
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('ready', resolve);
        client.once('error', reject);
        client.connect({ ...own.connectOptions, debug: (m: string) => debug.push(m) });
      });
      const closed = once(client, 'close');
      await own.close();
      await closed;
      expect(debug.filter((m) => m.startsWith('Inbound: Received DISCONNECT'))).toEqual(['Inbound: Received DISCONNECT (11, "Server shutting down")']);
    } finally {
      client.end();
      await own.close();
    }
  });
});
