import { afterEach, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { commandDeliver, httpDeliver } from '../../../src/hooks/deliver.js';
import type { Notification } from '../../../src/hooks/spool.js';
import { hook, tempDir } from './helpers.js';

const n: Notification = {
  id: '0b6c1a2e-1111-4222-8333-944455556666',
  event: 'upload',
  acceptedAt: Date.UTC(2024, 0, 2, 3, 4, 5),
  record: { event: 'transfer', user: 'alice', path: '/in/a b.csv', bytesWritten: 42, sha256: 'ab'.repeat(32), remote: '127.0.0.1:5000' },
};

interface Seen {
  method: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A receiver on 127.0.0.1 that records each request and answers with `answer`. */
async function receiver(answer: (res: ServerResponse) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method, headers: req.headers, body });
      answer(res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, seen };
}

const http = (url: string, over: Record<string, unknown> = {}) => httpDeliver(hook({ name: 'web', http: { url, ...over } }).http!, 'web');
const command = (argv: string[], over: Record<string, unknown> = {}) => commandDeliver(hook({ name: 'cmd', command: { argv, ...over } }).command!, 'cmd');

describe('httpDeliver', () => {
  it('POSTs a JSON body with the id, the event, the acceptance time and the record', async () => {
    const { url, seen } = await receiver((res) => res.writeHead(204).end());
    await http(url)(n);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.headers['content-type']).toBe('application/json');
    expect(seen[0]!.headers['x-sftp-chroot-hook']).toBe('web');
    expect(seen[0]!.headers['x-sftp-chroot-event']).toBe('upload');
    expect(seen[0]!.headers['x-sftp-chroot-id']).toBe(n.id);
    expect(JSON.parse(seen[0]!.body)).toEqual({ id: n.id, event: 'upload', acceptedAt: '2024-01-02T03:04:05.000Z', record: n.record });
    expect(seen[0]!.headers['x-sftp-chroot-signature']).toBeUndefined(); // no secret, no signature
  });

  it('signs the exact body: X-Sftp-Chroot-Signature is "sha256=" + HMAC-SHA256(secret, body) in hex', async () => {
    const secret = 'a-secret-of-at-least-16';
    const { url, seen } = await receiver((res) => res.writeHead(200).end('ok'));
    await http(url, { secret })(n);
    const expected = createHmac('sha256', secret).update(seen[0]!.body).digest('hex');
    expect(seen[0]!.headers['x-sftp-chroot-signature']).toBe(`sha256=${expected}`);
    const wrong = createHmac('sha256', 'another-secret-16chars').update(seen[0]!.body).digest('hex');
    expect(seen[0]!.headers['x-sftp-chroot-signature']).not.toBe(`sha256=${wrong}`);
  });

  it('sends the configured extra headers', async () => {
    const { url, seen } = await receiver((res) => res.writeHead(202).end());
    await http(url, { headers: { Authorization: 'Bearer t0ken', 'X-Tenant': 'acme' } })(n);
    expect(seen[0]!.headers['authorization']).toBe('Bearer t0ken');
    expect(seen[0]!.headers['x-tenant']).toBe('acme');
  });

  it('resolves on any 2xx answer', async () => {
    for (const status of [200, 201, 204, 299]) {
      const { url } = await receiver((res) => res.writeHead(status).end());
      await expect(http(url)(n)).resolves.toBeUndefined();
    }
  });

  it('rejects "HTTP 500" on a server error (and "HTTP 404", "HTTP 302": non-2xx is not delivered)', async () => {
    for (const status of [500, 404]) {
      const { url } = await receiver((res) => res.writeHead(status).end('nope'));
      await expect(http(url)(n)).rejects.toThrow(`HTTP ${status}`);
    }
    const { url: redirecting } = await receiver((res) => res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end());
    await expect(http(redirecting)(n)).rejects.toThrow();
  });

  it('rejects when the server never answers, once timeoutSeconds have passed', async () => {
    const { url, seen } = await receiver(() => undefined); // reads the request, never answers
    await expect(http(url, { timeoutSeconds: 0.2 })(n)).rejects.toThrow('no answer within 0.2s');
    expect(seen).toHaveLength(1);
  });

  it('rejects when the connection is refused', async () => {
    const { url } = await receiver((res) => res.end());
    const s = servers.pop()!;
    await new Promise((r) => s.close(r)); // nothing listens on that port any more
    await expect(http(url)(n)).rejects.toThrow('ECONNREFUSED');
  });
});

/** Whether `pid` is a live process: not gone and not a zombie waiting for its (new) parent to reap it. */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

describe('commandDeliver', () => {
  const sentinel = 'SFTP_HOOKS_TEST_SERVER_SECRET';
  /** Where the timeout test's processes wrote their ids: whatever the outcome, none is left running. */
  let pidFile: string | undefined;
  afterEach(async () => {
    delete process.env[sentinel];
    if (pidFile === undefined) return;
    for (const pid of (await readFile(pidFile, 'utf8').catch(() => '')).split(/\s+/).filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone, as it should be */
      }
    }
    pidFile = undefined;
  });

  it('runs argv without a shell and gives the command the JSON payload on stdin', async () => {
    const out = join(await tempDir(), 'stdin.json');
    await command(['/bin/sh', '-c', 'cat > "$1"', 'sh', out])(n);
    const text = await readFile(out, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(JSON.parse(text)).toEqual({ id: n.id, event: 'upload', acceptedAt: '2024-01-02T03:04:05.000Z', record: n.record });
  });

  it('sets SFTP_CHROOT_EVENT/ID/USER/PATH (and the other main fields) and passes none of the server\'s own environment', async () => {
    process.env[sentinel] = 'must-not-leak';
    const out = join(await tempDir(), 'env');
    await command(['/bin/sh', '-c', 'env > "$1"', 'sh', out])(n);
    const env = new Map((await readFile(out, 'utf8')).trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
    expect(env.get('SFTP_CHROOT_EVENT')).toBe('upload');
    expect(env.get('SFTP_CHROOT_ID')).toBe(n.id);
    expect(env.get('SFTP_CHROOT_USER')).toBe('alice');
    expect(env.get('SFTP_CHROOT_PATH')).toBe('/in/a b.csv');
    expect(env.get('SFTP_CHROOT_HOOK')).toBe('cmd');
    expect(env.get('SFTP_CHROOT_BYTES_WRITTEN')).toBe('42');
    expect(env.get('SFTP_CHROOT_SHA256')).toBe('ab'.repeat(32));
    expect(env.get('PATH')).toBe(process.env['PATH']);
    expect(env.has(sentinel)).toBe(false);
    expect(env.has('HOME')).toBe(false);
    const unexpected = [...env.keys()].filter((k) => !k.startsWith('SFTP_CHROOT_') && !['PATH', 'LANG', 'PWD', 'SHLVL', '_'].includes(k));
    expect(unexpected).toEqual([]); // PWD, SHLVL and _ are the shell's own
  });

  it('rejects on a non-zero exit with the exit code and the last line of stderr', async () => {
    const run = command(['/bin/sh', '-c', 'echo "first line" >&2; echo "receiver said no" >&2; exit 1']);
    await expect(run(n)).rejects.toThrow(/^exit 1: receiver said no$/);
    await expect(command(['/bin/sh', '-c', 'exit 3'])(n)).rejects.toThrow(/^exit 3$/);
  });

  it('kills a command that outlives timeoutSeconds, with what it started, and rejects', async () => {
    pidFile = join(await tempDir(), 'pids');
    // The shell and a child of its own that would otherwise run (and hold stderr open) for long.
    const run = command(['/bin/sh', '-c', 'sleep 1000 & echo "$$ $!" > "$1"; wait', 'sh', pidFile], { timeoutSeconds: 0.2 });
    await expect(run(n)).rejects.toThrow('no exit within 0.2s');
    const started = (await readFile(pidFile, 'utf8')).trim().split(' ').map(Number);
    expect(started).toHaveLength(2);
    for (const pid of started) expect(await running(pid)).toBe(false);
  });

  it('rejects "cannot run" when the program does not exist', async () => {
    await expect(command(['/nonexistent/hook-program', '--flag'])(n)).rejects.toThrow('cannot run /nonexistent/hook-program: ENOENT');
  });
});
