import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { ssh } from '../helpers/openssh.js';
import type { AuditRecord } from '../../src/index.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ files: { '.ssh/': null } });
});
afterAll(async () => {
  await s.close();
});

const refusals = () => s.events.all.filter((e): e is Extract<AuditRecord, { event: 'request.refused' }> => e.event === 'request.refused');

describe('everything but SFTP is refused and logged', () => {
  it('ssh user@host (a shell) fails clearly instead of hanging', async () => {
    const r = await ssh(s, ['-T']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/shell request failed/);
    const e = await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'shell');
    expect(e).toMatchObject({ user: s.username, why: 'only sftp is allowed' });
    expect((e as { remote: string }).remote).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('exec is refused with the command logged', async () => {
    const r = await ssh(s, ['cat', '/etc/passwd']);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/exec request failed/);
    expect(r.stdout).toBe('');
    await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'exec' && x.detail === 'cat /etc/passwd');
  });

  it('a pty request is refused', async () => {
    const r = await ssh(s, ['-tt', 'true']);
    expect(r.stderr).toMatch(/PTY allocation request failed|exec request failed/);
    await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'pty-req');
  });

  it('agent forwarding is refused, whatever exists in the root', async () => {
    // The client asks for agent forwarding only when it has an agent: give it one.
    const dir = await mkdtemp(join(tmpdir(), 'agent-'));
    const sock = join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      const r = await ssh(s, ['-A', 'true'], { env: { SSH_AUTH_SOCK: sock } });
      expect(r.code).not.toBe(0);
      await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'auth-agent-req@openssh.com');
    } finally {
      agent.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('X11 forwarding is refused', async () => {
    const r = await ssh(s, ['-X', '-o', 'XAuthLocation=/bin/false', 'true'], { env: { DISPLAY: 'localhost:77' } });
    expect(r.code).not.toBe(0);
    await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'x11-req');
  });

  it('local forwarding (-L) is refused as direct-tcpip', async () => {
    const r = await ssh(s, ['-N', '-o', 'ExitOnForwardFailure=yes', '-W', '127.0.0.1:22']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/administratively prohibited|stdio forwarding failed/);
    await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'direct-tcpip' && x.detail === '127.0.0.1:22');
  });

  it('remote forwarding (-R) is refused as tcpip-forward', async () => {
    const r = await ssh(s, ['-N', '-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:0:127.0.0.1:22']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/remote port forwarding failed/);
    await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'tcpip-forward');
  });

  it('unix-socket forwarding is refused', async () => {
    const r = await ssh(s, ['-N', '-o', 'ExitOnForwardFailure=yes', '-R', '/tmp/sftp-chroot-test.sock:127.0.0.1:22']);
    expect(r.code).not.toBe(0);
    await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'streamlocal-forward@openssh.com');
  });

  it('tun forwarding is refused as an unknown channel', async () => {
    const r = await ssh(s, ['-N', '-o', 'ExitOnForwardFailure=yes', '-w', 'any:any']);
    expect(r.code).not.toBe(0);
    await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'channel:tun@openssh.com');
  });

  it('a subsystem other than sftp is refused', async () => {
    const r = await ssh(s, ['-s', 'netconf']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/subsystem request failed/);
    await s.events.waitFor((x) => x.event === 'request.refused' && x.what === 'subsystem' && x.detail === 'netconf');
  });

  it('every refusal names the user and the remote address', () => {
    expect(refusals().length).toBeGreaterThan(5);
    for (const r of refusals()) {
      expect(r.user).toBe(s.username);
      expect(r.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    }
  });
});
