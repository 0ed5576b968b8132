/**
 * Delivering one notification: a POST to a URL (fetch, a timeout, an HMAC signature) or a command
 * (argv without a shell, the JSON on stdin, the main fields in the environment, a timeout). Either
 * resolves when the receiver took it (2xx, exit 0) and rejects with a short reason otherwise.
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import type { HookConfig } from './config.js';
import type { Notification } from './spool.js';

export type Deliver = (n: Notification) => Promise<void>;

/** The body receivers get: the record, the hook event and the id to de-duplicate on. */
export function payloadOf(n: Notification): string {
  return JSON.stringify({ id: n.id, event: n.event, acceptedAt: new Date(n.acceptedAt).toISOString(), record: n.record });
}

export function httpDeliver(t: NonNullable<HookConfig['http']>, hook: string): Deliver {
  return async (n) => {
    const body = payloadOf(n);
    const headers: Record<string, string> = { ...t.headers, 'content-type': 'application/json', 'user-agent': 'sftp-chroot', 'x-sftp-chroot-hook': hook, 'x-sftp-chroot-event': n.event, 'x-sftp-chroot-id': n.id };
    if (t.secret !== undefined) headers['x-sftp-chroot-signature'] = `sha256=${createHmac('sha256', t.secret).update(body).digest('hex')}`;
    let res: Response;
    try {
      res = await fetch(t.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(t.timeoutSeconds * 1000), redirect: 'error' });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      throw new Error(err.name === 'TimeoutError' ? `no answer within ${t.timeoutSeconds}s` : (err.cause?.code ?? err.message));
    }
    await res.body?.cancel().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}`);
  };
}

/** Fields a command can read without parsing JSON. */
function environmentOf(n: Notification, hook: string): Record<string, string> {
  const r = n.record as Record<string, unknown>;
  const env: Record<string, string> = { SFTP_CHROOT_HOOK: hook, SFTP_CHROOT_EVENT: n.event, SFTP_CHROOT_ID: n.id };
  for (const [k, name] of [['user', 'USER'], ['path', 'PATH'], ['from', 'FROM'], ['to', 'TO'], ['remote', 'REMOTE'], ['sessionId', 'SESSION'], ['bytesWritten', 'BYTES_WRITTEN'], ['bytesRead', 'BYTES_READ'], ['sha256', 'SHA256'], ['time', 'TIME']] as const)
    if (r[k] !== undefined) env[`SFTP_CHROOT_${name}`] = String(r[k]);
  return env;
}

export function commandDeliver(t: NonNullable<HookConfig['command']>, hook: string): Deliver {
  return (n) =>
    new Promise<void>((resolve, reject) => {
      // A minimal environment: the command sees the notification, not the server's secrets.
      const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...environmentOf(n, hook) };
      // In a process group of its own, so the timeout kills what it started too: a shell's `sleep`,
      // a script's `curl` would otherwise live on holding stderr, and the delivery (and its slot)
      // would wait for them however long they take.
      const child = spawn(t.argv[0]!, t.argv.slice(1), { env, stdio: ['pipe', 'ignore', 'pipe'], detached: true });
      let stderr = '';
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, t.timeoutSeconds * 1000);
      child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-300)));
      child.stdin.on('error', () => undefined); // a command that does not read its stdin
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${t.argv[0]}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(signal === 'SIGKILL' ? `no exit within ${t.timeoutSeconds}s` : `exit ${code ?? signal}${stderr ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`));
      });
      child.stdin.end(payloadOf(n) + '\n');
    });
}
