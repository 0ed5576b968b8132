/** One example of every audit event type (the schema is the type, so this list breaks when it changes), and temporary folders tests remove. */
import { afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Audit, type AuditEvent } from '../../../src/audit/events.js';
import { EventLog } from '../../../src/audit/memory-sink.js';

export const core = { user: 'alice', sessionId: 'abc123', remote: '192.0.2.7:50001' };
export const evil = 'x\nFailed password for root from 6.6.6.6 port 22 ssh2';

export const SAMPLES: AuditEvent[] = [
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

/** An Audit with an in-memory sink, to read back what was emitted as records. */
export function fanout(): { audit: Audit; mem: EventLog } {
  const audit = new Audit('test-server');
  const mem = new EventLog();
  audit.addSink(mem);
  return { audit, mem };
}

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A temporary folder removed after the current test. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
