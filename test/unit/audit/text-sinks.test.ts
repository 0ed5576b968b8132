import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent } from '../../../src/audit/events.js';
import { REFUSAL_REASONS } from '../../../src/audit/codes.js';
import { AuthLogSink, XferlogSink, authLogLines, xferlogLine, xferlogTime } from '../../../src/audit/text-sinks.js';
import { run } from '../../helpers/openssh.js';
import { SAMPLES, core, fanout, tempDir } from './samples.js';

const remote = '192.0.2.7:50001';
/** The auth log lines for `events`, without the time, host and pid prefix. */
function lines(...events: AuditEvent[]): string[] {
  const { audit, mem } = fanout();
  for (const e of events) audit.emit(e);
  return mem.all.flatMap((r) => authLogLines(r, 'host', 42)).map((l) => l.replace(/^\S+ host sftp-chroot\[42\]: /, ''));
}

describe('xferlog', () => {
  it('gets one 14-field line per transfer and nothing else', async () => {
    const file = join(tempDir('sink-'), 'xferlog');
    const { audit, mem } = fanout();
    const sink = new XferlogSink(file, true);
    audit.addSink(sink);
    for (const e of SAMPLES) audit.emit(e);
    await sink.close();
    const written = readFileSync(file, 'utf8').trim().split('\n');
    const transfers = mem.ofType('transfer');
    expect(written).toHaveLength(transfers.length);
    const [up, down] = written.map((l) => l.split(' '));
    expect(up).toHaveLength(18);
    expect(up!.slice(5)).toEqual(['3', '192.0.2.7', '4096', '/in/x\\x0aFailed_password_for_root_from_6.6.6.6_port_22_ssh2_with_space', 'b', '_', 'i', 'r', 'alice', 'sftp', '0', '*', 'c']);
    expect(down!.slice(5)).toEqual(['0', '192.0.2.7', '100', '/out.bin', 'b', '_', 'o', 'r', 'alice', 'sftp', '0', '*', 'i']);
    expect(xferlogLine(transfers[0]!)).toBe(written[0]);
  });

  it('time is DDD MMM dd hh:mm:ss YYYY with a zero-padded day', () => {
    expect(xferlogTime(new Date(2026, 0, 5, 7, 8, 9))).toBe('Mon Jan 05 07:08:09 2026');
  });
});

describe('the auth log', () => {
  it('writes OpenSSH wording only for authentication events', () => {
    expect(lines(...SAMPLES)).toEqual([
      'Accepted publickey for alice from 192.0.2.7 port 50001 ssh2: ED25519 SHA256:abc',
      'Failed password for x\\x0aFailed\\x20password\\x20for\\x20root\\x20from\\x206.6.6.6\\x20port\\x2022\\x20ssh2 from 192.0.2.7 port 50001 ssh2',
      'Invalid user ghost from 192.0.2.7 port 50001',
      'Failed password for invalid user ghost from 192.0.2.7 port 50001 ssh2',
      'Disconnecting authenticating user alice 192.0.2.7 port 50001: Too many authentication failures [preauth]',
    ]);
  });

  it('writes a refusal sshd would log (penalty, too-many-startups) and no other refusal', () => {
    const refused = REFUSAL_REASONS.map((why): AuditEvent => ({ event: 'request.refused', remote, what: 'connection', why }));
    expect(lines(...refused)).toEqual(['Refused connection from 192.0.2.7 port 50001: too-many-startups', 'Refused connection from 192.0.2.7 port 50001: penalty']);
  });

  it('says a user is not allowed from this address (allowFrom)', () => {
    expect(lines({ event: 'auth.failure', ...core, method: 'password', reason: 'source-not-allowed', attempt: 1 })).toEqual(['Refused connection from 192.0.2.7 port 50001: user alice not allowed from this address']);
    expect(lines({ event: 'auth.failure', ...core, method: 'password', reason: 'account-disabled', attempt: 1 })).toEqual([
      'User alice not allowed because account is locked',
      'Failed password for alice from 192.0.2.7 port 50001 ssh2',
    ]);
    expect(lines({ event: 'auth.failure', ...core, method: 'publickey', reason: 'account-expired', attempt: 1 })).toEqual([
      'Account alice has expired',
      'Failed publickey for alice from 192.0.2.7 port 50001 ssh2',
    ]);
  });

  it('skips declined public-key queries', async () => {
    const file = join(tempDir('sink-'), 'auth.log');
    const { audit } = fanout();
    const sink = new AuthLogSink(file, true);
    audit.addSink(sink);
    audit.emit({ event: 'auth.failure', ...core, method: 'publickey', reason: 'bad-key', attempt: 0, probe: true });
    await sink.close();
    expect(existsSync(file) ? readFileSync(file, 'utf8') : '').toBe('');
  });
});

describe('the auth log for connections that never logged in (connection.close)', () => {
  it('no SSH identification: "Did not receive identification string"', () => {
    expect(lines({ event: 'connection.close', remote, stage: 'ident', reason: 'closed by the client before identifying', durationMs: 5 })).toEqual([
      'Did not receive identification string from 192.0.2.7 port 50001',
    ]);
  });

  it('login grace time exceeded, at any stage: "Timeout before authentication"', () => {
    for (const stage of ['ident', 'key-exchange', 'authentication'] as const) {
      expect(lines({ event: 'connection.close', remote, stage, reason: 'login grace time exceeded', durationMs: 30_000 })).toEqual(['Timeout before authentication for 192.0.2.7 port 50001']);
    }
  });

  it('closed during key exchange: "Connection closed by <ip> port <port> [preauth]"', () => {
    expect(lines({ event: 'connection.close', remote, sessionId: 's1', stage: 'key-exchange', reason: 'closed during key exchange', durationMs: 5, client: 'SSH-2.0-probe' })).toEqual([
      'Connection closed by 192.0.2.7 port 50001 [preauth]',
    ]);
  });

  it('closed during authentication: "Connection closed by authenticating user <user> …", the user escaped', () => {
    const base = { event: 'connection.close', remote, sessionId: 's2', stage: 'authentication', reason: 'closed by the client before logging in', durationMs: 5 } as const;
    expect(lines({ ...base, user: 'alice', failedAttempts: 1 })).toEqual(['Connection closed by authenticating user alice 192.0.2.7 port 50001 [preauth]']);
    expect(lines({ ...base, user: 'x y from 6.6.6.6' })).toEqual(['Connection closed by authenticating user x\\x20y\\x20from\\x206.6.6.6 192.0.2.7 port 50001 [preauth]']);
    // Closed before it ever named a user.
    expect(lines(base)).toEqual(['Connection closed by 192.0.2.7 port 50001 [preauth]']);
  });

  it('the fail2ban filter counts failed keyboard-interactive logins and not connection.close lines', async () => {
    const { audit, mem } = fanout();
    audit.emit({ event: 'auth.failure', ...core, method: 'keyboard-interactive', reason: 'bad-password', attempt: 1 });
    audit.emit({ event: 'auth.failure', ...core, user: 'ghost', method: 'keyboard-interactive', reason: 'unknown-user', attempt: 2 });
    audit.emit({ event: 'connection.close', remote, sessionId: 's3', stage: 'authentication', reason: 'closed by the client before logging in', durationMs: 5, user: 'alice', failedAttempts: 2 });
    audit.emit({ event: 'connection.close', remote, stage: 'ident', reason: 'closed by the client before identifying', durationMs: 5 });
    audit.emit({ event: 'connection.close', remote, stage: 'key-exchange', reason: 'login grace time exceeded', durationMs: 5 });
    const written = mem.all.flatMap((r) => authLogLines(r, 'host', 42));
    expect(written.filter((l) => / Failed keyboard-interactive for (invalid user )?\S+ from 192\.0\.2\.7 port 50001 ssh2$/.test(l))).toHaveLength(2);
    const file = join(tempDir('f2b-'), 'auth.log');
    writeFileSync(file, written.join('\n') + '\n');
    const filter = new URL('../../../contrib/fail2ban/filter.d/sftp-chroot.conf', import.meta.url).pathname;
    const f = await run('fail2ban-regex', ['-o', '<ip>', file, filter]);
    expect(f.stdout.trim().split('\n')).toEqual(['192.0.2.7', '192.0.2.7']);
  });
});
