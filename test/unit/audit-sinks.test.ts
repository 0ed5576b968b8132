import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, renameSync, existsSync, writeFileSync, rmSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Audit, type AuditEvent, type AuditRecord } from '../../src/audit/events.js';
import { JsonSink, PrettySink } from '../../src/audit/pino-sink.js';
import { AuthLogSink, XferlogSink, authLogLines, xferlogLine, xferlogTime } from '../../src/audit/text-sinks.js';
import { EventLog } from '../../src/audit/memory-sink.js';
import { escapeText } from '../../src/audit/escape.js';
import { run } from '../helpers/openssh.js';

const core = { user: 'alice', sessionId: 'abc123', remote: '192.0.2.7:50001' };
const evil = 'x\nFailed password for root from 6.6.6.6 port 22 ssh2';

/** One example of every event type: the schema is the type, so this list breaks when it changes. */
const SAMPLES: AuditEvent[] = [
  { event: 'auth.success', ...core, method: 'publickey', keyType: 'ssh-ed25519', keyFingerprint: 'SHA256:abc' },
  { event: 'auth.failure', ...core, user: evil, method: 'password', reason: 'bad-password', attempt: 1 },
  { event: 'auth.failure', ...core, user: 'ghost', method: 'password', reason: 'unknown-user', attempt: 2 },
  { event: 'auth.failure', ...core, method: 'password', reason: 'too-many-attempts', attempt: 6 },
  { event: 'session.open', ...core, client: 'SSH-2.0-OpenSSH_9.2p1', cipher: 'chacha20-poly1305@openssh.com' },
  { event: 'session.close', ...core, durationMs: 1200, totals: { filesUp: 1, filesDown: 2, bytesIn: 10, bytesOut: 20, requests: 9, errors: 0 } },
  { event: 'request.refused', ...core, what: 'exec', why: 'only sftp is allowed', detail: 'cat /etc/passwd' },
  {
    event: 'transfer', ...core, path: `/in/${evil} with space`, flags: 'WRITE|CREAT|TRUNC', direction: 'upload', bytesRead: 0, bytesWritten: 4096,
    firstOffset: 0, highestOffset: 4096, startSize: 0, requests: 1, maxRequestBytes: 4096, durationMs: 2500, status: 'complete', sha256: 'ab'.repeat(32),
  },
  {
    event: 'transfer', ...core, path: '/out.bin', flags: 'READ', direction: 'download', bytesRead: 100, bytesWritten: 0,
    firstOffset: 0, highestOffset: 100, startSize: 1000, requests: 1, maxRequestBytes: 100, durationMs: 10, status: 'incomplete',
  },
  { event: 'mkdir', ...core, path: '/d', mode: '0755', ok: true },
  { event: 'rmdir', ...core, path: '/d', ok: false, sftpStatus: 'NO_SUCH_FILE', error: 'ENOENT' },
  { event: 'remove', ...core, path: '/f', ok: true },
  { event: 'rename', ...core, from: '/a', to: '/b', overwrite: true, ok: true },
  { event: 'symlink', ...core, path: '/l', target: '../x', ok: true },
  { event: 'link', ...core, from: '/a', to: '/h', ok: true },
  { event: 'setstat', ...core, path: '/a', changes: { mode: '0600', mtime: 1700000000 }, ok: true },
  { event: 'copy', ...core, from: '/a', to: '/b', bytes: 5, ok: true },
  { event: 'protocol.error', ...core, kind: 'malformed', message: 'Malformed READ packet' },
  { event: 'server.start', message: 'listening on 127.0.0.1:2222' },
];

function fanout(): { audit: Audit; mem: EventLog } {
  const audit = new Audit('test-server');
  const mem = new EventLog();
  audit.addSink(mem);
  return { audit, mem };
}

describe('audit sinks', () => {
  it('the JSON sink writes one parseable record per event with the core fields', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sink-'));
    const file = join(dir, 'a.json');
    const { audit } = fanout();
    audit.addSink(new JsonSink({ file, level: 'info', sync: true }));
    for (const e of SAMPLES) audit.emit(e);
    await audit.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(SAMPLES.length);
    const recs = lines.map((l) => JSON.parse(l) as AuditRecord);
    recs.forEach((r, i) => {
      expect(r).toMatchObject({ ...SAMPLES[i], level: r.event === 'protocol.error' ? 'warn' : 'info', server: 'test-server' });
      expect(Date.parse(r.time)).not.toBeNaN();
    });
  });

  it('the JSON sink reopens its file after rotation (SIGUSR1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sink-'));
    const file = join(dir, 'a.json');
    const { audit } = fanout();
    audit.addSink(new JsonSink({ file, level: 'info', sync: true }));
    audit.emit(SAMPLES[0]!);
    renameSync(file, file + '.1');
    audit.reopen();
    audit.emit(SAMPLES[1]!);
    await audit.close();
    expect(readFileSync(file + '.1', 'utf8').trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ event: 'auth.failure' });
  });

  it('the pretty sink writes one escaped line per event', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const { audit } = fanout();
    audit.addSink(new PrettySink('info', out));
    for (const e of SAMPLES) audit.emit(e);
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(SAMPLES.length);
    expect(lines[1]).toContain('auth.failure');
    expect(lines[1]).toContain('x\\nFailed');
  });

  it('xferlog gets one 14-field line per transfer and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sink-'));
    const file = join(dir, 'xferlog');
    const { audit, mem } = fanout();
    const sink = new XferlogSink(file, true);
    audit.addSink(sink);
    for (const e of SAMPLES) audit.emit(e);
    void sink.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const transfers = mem.ofType('transfer');
    expect(lines).toHaveLength(transfers.length);
    const [up, down] = lines.map((l) => l.split(' '));
    expect(up).toHaveLength(18);
    expect(up!.slice(5)).toEqual(['3', '192.0.2.7', '4096', '/in/x\\x0aFailed_password_for_root_from_6.6.6.6_port_22_ssh2_with_space', 'b', '_', 'i', 'r', 'alice', 'sftp', '0', '*', 'c']);
    expect(down!.slice(5)).toEqual(['0', '192.0.2.7', '100', '/out.bin', 'b', '_', 'o', 'r', 'alice', 'sftp', '0', '*', 'i']);
    expect(xferlogLine(transfers[0]!)).toBe(lines[0]);
  });

  it('xferlog time is DDD MMM dd hh:mm:ss YYYY with a zero-padded day', () => {
    expect(xferlogTime(new Date(2026, 0, 5, 7, 8, 9))).toBe('Mon Jan 05 07:08:09 2026');
  });

  it('the auth log writes OpenSSH wording only for authentication events', () => {
    const { audit, mem } = fanout();
    for (const e of SAMPLES) audit.emit(e);
    const lines = mem.all.flatMap((r) => authLogLines(r, 'host', 42));
    expect(lines.map((l) => l.replace(/^\S+ host sftp-chroot\[42\]: /, ''))).toEqual([
      'Accepted publickey for alice from 192.0.2.7 port 50001 ssh2: ED25519 SHA256:abc',
      'Failed password for x\\x0aFailed\\x20password\\x20for\\x20root\\x20from\\x206.6.6.6\\x20port\\x2022\\x20ssh2 from 192.0.2.7 port 50001 ssh2',
      'Invalid user ghost from 192.0.2.7 port 50001',
      'Failed password for invalid user ghost from 192.0.2.7 port 50001 ssh2',
      'Disconnecting authenticating user alice 192.0.2.7 port 50001: Too many authentication failures [preauth]',
    ]);
  });

  it('the auth log skips declined public-key queries', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sink-'));
    const file = join(dir, 'auth.log');
    const { audit } = fanout();
    const sink = new AuthLogSink(file, true);
    audit.addSink(sink);
    audit.emit({ event: 'auth.failure', ...core, method: 'publickey', reason: 'bad-key', attempt: 0, probe: true });
    void sink.close();
    expect(existsSync(file) ? readFileSync(file, 'utf8') : '').toBe('');
  });

  it('escapeText escapes control characters, backslashes and bidi overrides', () => {
    expect(escapeText('a\\b\u0007c\u202ed\ud800')).toBe('a\\x5cb\\x07c\\u{202e}d\\u{d800}');
    expect(escapeText('')).toBe('""');
  });

  it('waitFor resolves with an event that already happened', async () => {
    const { audit, mem } = fanout();
    audit.emit(SAMPLES[0]!);
    await expect(mem.waitFor('auth.success', { timeout: 10 })).resolves.toMatchObject({ user: 'alice' });
    await expect(mem.waitFor('transfer', { timeout: 10 })).rejects.toThrow(/no "transfer" event within 10 ms/);
  });
});

describe('the test double event log', () => {
  it('is an array of records and an async iterable that also yields later events', async () => {
    const { audit, mem } = fanout();
    audit.emit(SAMPLES[0]!);
    expect(mem.length).toBe(1);
    expect(mem.filter((e) => e.event === 'auth.success')).toHaveLength(1);
    expect(Array.isArray(mem.map((e) => e.event))).toBe(true);
    const seen: string[] = [];
    const reader = (async () => {
      for await (const e of mem) {
        seen.push(e.event);
        if (seen.length === 3) break;
      }
    })();
    audit.emit(SAMPLES[4]!);
    audit.emit(SAMPLES[5]!);
    await reader;
    expect(seen).toEqual(['auth.success', 'session.open', 'session.close']);
  });
});

describe('the auth log for connections that never logged in (connection.close)', () => {
  const remote = '192.0.2.7:50001';
  const lineOf = (e: AuditEvent) => {
    const { audit, mem } = fanout();
    audit.emit(e);
    return mem.all.flatMap((r) => authLogLines(r, 'host', 42)).map((l) => l.replace(/^\S+ host sftp-chroot\[42\]: /, ''));
  };

  it('no SSH identification: "Did not receive identification string"', () => {
    expect(lineOf({ event: 'connection.close', remote, stage: 'ident', reason: 'closed by the client before identifying', durationMs: 5 })).toEqual([
      'Did not receive identification string from 192.0.2.7 port 50001',
    ]);
  });

  it('login grace time exceeded, at any stage: "Timeout before authentication"', () => {
    for (const stage of ['ident', 'key-exchange', 'authentication'] as const) {
      expect(lineOf({ event: 'connection.close', remote, stage, reason: 'login grace time exceeded', durationMs: 30_000 })).toEqual([
        'Timeout before authentication for 192.0.2.7 port 50001',
      ]);
    }
  });

  it('closed during key exchange: "Connection closed by <ip> port <port> [preauth]"', () => {
    expect(lineOf({ event: 'connection.close', remote, sessionId: 's1', stage: 'key-exchange', reason: 'closed during key exchange', durationMs: 5, client: 'SSH-2.0-probe' })).toEqual([
      'Connection closed by 192.0.2.7 port 50001 [preauth]',
    ]);
  });

  it('closed during authentication: "Connection closed by authenticating user <user> …", the user escaped', () => {
    const base = { event: 'connection.close', remote, sessionId: 's2', stage: 'authentication', reason: 'closed by the client before logging in', durationMs: 5 } as const;
    expect(lineOf({ ...base, user: 'alice', failedAttempts: 1 })).toEqual(['Connection closed by authenticating user alice 192.0.2.7 port 50001 [preauth]']);
    expect(lineOf({ ...base, user: 'x y from 6.6.6.6' })).toEqual(['Connection closed by authenticating user x\\x20y\\x20from\\x206.6.6.6 192.0.2.7 port 50001 [preauth]']);
    // Closed before it ever named a user.
    expect(lineOf(base)).toEqual(['Connection closed by 192.0.2.7 port 50001 [preauth]']);
  });

  it('the fail2ban filter counts failed keyboard-interactive logins and not connection.close lines', async () => {
    const { audit, mem } = fanout();
    audit.emit({ event: 'auth.failure', ...core, method: 'keyboard-interactive', reason: 'bad-password', attempt: 1 });
    audit.emit({ event: 'auth.failure', ...core, user: 'ghost', method: 'keyboard-interactive', reason: 'unknown-user', attempt: 2 });
    audit.emit({ event: 'connection.close', remote: core.remote, sessionId: 's3', stage: 'authentication', reason: 'closed by the client before logging in', durationMs: 5, user: 'alice', failedAttempts: 2 });
    audit.emit({ event: 'connection.close', remote: core.remote, stage: 'ident', reason: 'closed by the client before identifying', durationMs: 5 });
    audit.emit({ event: 'connection.close', remote: core.remote, stage: 'key-exchange', reason: 'login grace time exceeded', durationMs: 5 });
    const lines = mem.all.flatMap((r) => authLogLines(r, 'host', 42));
    expect(lines.filter((l) => / Failed keyboard-interactive for (invalid user )?\S+ from 192\.0\.2\.7 port 50001 ssh2$/.test(l))).toHaveLength(2);

    const dir = mkdtempSync(join(tmpdir(), 'f2b-'));
    try {
      const file = join(dir, 'auth.log');
      writeFileSync(file, lines.join('\n') + '\n');
      const filter = new URL('../../contrib/fail2ban/filter.d/sftp-chroot.conf', import.meta.url).pathname;
      const f = await run('fail2ban-regex', ['-o', '<ip>', file, filter]);
      expect(f.stdout.trim().split('\n')).toEqual(['192.0.2.7', '192.0.2.7']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
