/**
 * Hooks wired into the server: real uploads notify a local HTTP endpoint and a command; an outage,
 * a `kill -9` and a restart lose nothing; a slow endpoint never holds up a client; /metrics and the
 * audit log show the backlog; with two workers every upload is spooled once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { hooksSchema } from '../../src/hooks/config.js';
import { connect } from '../helpers/sftp-client.js';
import { runCli, startDaemon, type Daemon } from '../helpers/cli.js';

const SECRET = 'a-secret-of-sixteen-or-more';

interface Payload {
  id: string;
  event: string;
  acceptedAt: string;
  record: Record<string, unknown>;
}
interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  payload: Payload;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sftp-hooks-'));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** A local receiver on 127.0.0.1 (`port` 0: any); `onRequest` runs before the 200 answer. */
async function endpoint(port = 0, onRequest?: (r: Received, index: number) => Promise<void> | void) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const r = { headers: req.headers, body, payload: JSON.parse(body) as Payload };
      received.push(r);
      void Promise.resolve(onRequest?.(r, received.length - 1)).then(() => res.writeHead(200).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  };
  cleanups.push(close);
  return { port: (server.address() as AddressInfo).port, received, close };
}

/** A port nothing listens on (the endpoint is down). */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not reached`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function testServer(hooks: unknown[], config: Record<string, unknown> = {}): Promise<TestServer> {
  const s = await startTestServer({ config: { hooks: hooks as never, ...config } });
  cleanups.push(() => s.close());
  return s;
}

const httpHook = (port: number, over: Record<string, unknown> = {}) => ({
  name: 'web',
  events: ['upload'],
  http: { url: `http://127.0.0.1:${port}/hook`, secret: SECRET },
  retryMaxSeconds: 1,
  ...over,
});

/** The notifications stored under a spool folder (recursively); one delivered meanwhile is gone. */
async function spooled(dir: string): Promise<Payload[]> {
  const out: Payload[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!e.isFile() || !e.name.endsWith('.json') || e.name.startsWith('.')) continue;
    const text = await readFile(join(e.parentPath, e.name), 'utf8').catch(() => undefined);
    if (text !== undefined) out.push(JSON.parse(text) as Payload);
  }
  return out;
}

async function daemon(dir: string): Promise<Daemon> {
  const d = await startDaemon(['--config', 'config.json'], dir);
  cleanups.push(async () => d.child.exitCode === null && d.child.kill('SIGKILL'));
  return d;
}

const login = (port: number) => connect({ host: '127.0.0.1', port, username: 'u', password: 'pw', hostVerifier: () => true });

describe('hooks', () => {
  it('an upload notifies an HTTP endpoint with the record, its id and event in headers, and a valid signature', async () => {
    const ep = await endpoint();
    const s = await testServer([httpHook(ep.port)]);
    const c = await connect(s);
    await c.writeFile('/report.csv', 'hello');
    await c.end();
    await until(() => ep.received.length === 1, 'one notification');

    const [{ headers, body, payload }] = ep.received as [Received];
    expect(headers['x-sftp-chroot-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`);
    expect(headers).toMatchObject({ 'x-sftp-chroot-id': payload.id, 'x-sftp-chroot-event': 'upload', 'x-sftp-chroot-hook': 'web', 'content-type': 'application/json' });
    const transfer = s.events.ofType('transfer')[0]!;
    expect(payload).toMatchObject({ event: 'upload', record: { event: 'transfer', path: '/report.csv', user: s.username, bytesWritten: 5, status: 'complete' } });
    expect(payload.record).toEqual(JSON.parse(JSON.stringify(transfer)));
  });

  it('a command hook receives the same record on stdin, and the main fields in SFTP_CHROOT_* variables', async () => {
    const out = await tempDir();
    const script = `let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const env=Object.fromEntries(Object.entries(process.env).filter(([k])=>k.startsWith('SFTP_CHROOT_')));require('fs').writeFileSync(process.argv[1]+'/'+process.env.SFTP_CHROOT_ID+'.json',JSON.stringify({stdin:s,env}))})`;
    const ep = await endpoint();
    const s = await testServer([httpHook(ep.port), { name: 'cmd', events: ['upload'], command: { argv: [process.execPath, '-e', script, out] } }]);
    const c = await connect(s);
    await c.writeFile('/in.txt', 'abc');
    await c.end();
    await until(async () => ep.received.length === 1 && (await readdir(out)).length === 1, 'both hooks ran');

    const [file] = await readdir(out);
    const { stdin, env } = JSON.parse(await readFile(join(out, file!), 'utf8')) as { stdin: string; env: Record<string, string> };
    const payload = JSON.parse(stdin) as Payload;
    expect(payload.record).toEqual(ep.received[0]!.payload.record);
    expect(payload.event).toBe('upload');
    expect(env).toMatchObject({ SFTP_CHROOT_HOOK: 'cmd', SFTP_CHROOT_EVENT: 'upload', SFTP_CHROOT_ID: payload.id, SFTP_CHROOT_USER: s.username, SFTP_CHROOT_PATH: '/in.txt', SFTP_CHROOT_BYTES_WRITTEN: '3' });
    expect(`${payload.id}.json`).toBe(file);
  });

  it('uploads made while the endpoint is down survive kill -9 and a restart on the same spool: each id is delivered at least once', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'root'));
    const port = await closedPort();
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, passwordCost: 10, users: [{ username: 'u', password: 'pw', root: 'root' }], hooks: [httpHook(port)], spoolDir: 'spool' }),
    );
    const first = await daemon(dir);
    const c = await login(first.port);
    for (let i = 0; i < 5; i++) await c.writeFile(`/f${i}.txt`, `upload ${i}`);
    await c.end();
    await until(async () => (await spooled(join(dir, 'spool'))).length === 5, 'five notifications stored');
    await until(() => /"event":"hook.failed"/.test(first.stdout()), 'a failed delivery logged');
    const stored = await spooled(join(dir, 'spool'));
    expect(await first.stop('SIGKILL')).toBe(null);

    const second = await daemon(dir);
    const ep = await endpoint(port);
    const ids = () => new Set(ep.received.map((r) => r.payload.id));
    await until(() => stored.every((n) => ids().has(n.id)), 'every stored id delivered');
    expect(stored.map((n) => n.record['path']).sort()).toEqual(['/f0.txt', '/f1.txt', '/f2.txt', '/f3.txt', '/f4.txt']);
    expect(new Set(ep.received.map((r) => r.payload.record['path']))).toEqual(new Set(stored.map((n) => n.record['path'])));
    await until(async () => (await spooled(join(dir, 'spool'))).length === 0, 'the spool emptied');
    expect(await second.stop('SIGTERM')).toBe(0);
  });

  it('a slow endpoint does not slow uploads: a second upload completes while the endpoint still holds the first notification', async () => {
    const order: string[] = [];
    const ep = await endpoint(0, async (r, i) => {
      order.push(`received ${String(r.payload.record['path'])}`);
      if (i === 0) {
        await new Promise((resolve) => setTimeout(resolve, 2000));
        order.push('answered the first');
      }
    });
    const s = await testServer([httpHook(ep.port)]);
    const c = await connect(s);
    await c.writeFile('/a.bin', 'a');
    await until(() => order.includes('received /a.bin'), 'the first notification arrives');
    await c.writeFile('/b.bin', 'b');
    order.push('uploaded /b.bin');
    await c.end();
    await until(() => order.includes('answered the first') && order.includes('received /b.bin'), 'both notifications');
    expect(order.indexOf('uploaded /b.bin')).toBeLessThan(order.indexOf('answered the first'));
    expect(order.indexOf('received /a.bin')).toBeLessThan(order.indexOf('uploaded /b.bin'));
  });

  it('while the endpoint is down, /metrics shows the backlog and failures, and the log warns at half and full backlog and names a refused upload', async () => {
    const port = await closedPort();
    const s = await testServer([httpHook(port, { maxBacklog: 4 })], { admin: { listen: { host: '127.0.0.1', port: 0 } } });
    const c = await connect(s);
    for (let i = 0; i < 5; i++) await c.writeFile(`/m${i}.txt`, 'x');
    await c.end();
    const refused = await s.events.waitFor('hook.refused', { timeout: 5000 });
    expect(refused).toMatchObject({ level: 'warn', hook: 'web', hookEvent: 'upload', reason: 'backlog-full', user: s.username, path: '/m4.txt' });
    // The refusal can come while the fourth is still being stored: the full warning follows it.
    await s.events.waitFor('hook.backlog', (r) => r.depth === r.max, { timeout: 5000 });
    const warned = s.events.ofType('hook.backlog');
    expect(warned.map((r) => [r.depth >= 2 && r.depth < 4 ? 'half' : r.depth === 4 ? 'full' : r.depth, r.max, r.level])).toEqual([['half', 4, 'warn'], ['full', 4, 'warn']]);
    const failed = await s.events.waitFor('hook.failed', { timeout: 5000 });
    expect(failed).toMatchObject({ level: 'warn', hook: 'web', hookEvent: 'upload', attempt: 1, retryInSeconds: 1, error: 'ECONNREFUSED' });

    const metrics = await (await fetch(`http://127.0.0.1:${s.server.adminPort}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(value('sftp_hook_backlog{hook="web"}')).toBe(4);
    expect(value('sftp_hook_oldest_seconds{hook="web"}')).toBeGreaterThan(0);
    expect(value('sftp_hook_deliveries_total{hook="web",outcome="failed"}')).toBeGreaterThanOrEqual(1);
    expect(value('sftp_hook_deliveries_total{hook="web",outcome="refused"}')).toBe(1);
    expect(value('sftp_hook_deliveries_total{hook="web",outcome="delivered"}')).toBe(0);
  });

  it('a reload that changes the hooks closes the old sink and the new one delivers the backlog it left', async () => {
    const port = await closedPort();
    const s = await testServer([httpHook(port)]);
    const c = await connect(s);
    await c.writeFile('/r1.txt', '1');
    await c.writeFile('/r2.txt', '2');
    await s.events.waitFor('hook.failed', { timeout: 5000 });
    const ep = await endpoint();
    await s.server.reload({ ...s.server.config, hooks: hooksSchema.parse([httpHook(ep.port)]) });
    await c.writeFile('/r3.txt', '3');
    await c.end();
    await until(() => new Set(ep.received.map((r) => r.payload.record['path'])).size === 3, 'three paths delivered');
    expect([...new Set(ep.received.map((r) => r.payload.record['path']))].sort()).toEqual(['/r1.txt', '/r2.txt', '/r3.txt']);
  });

  it('with two workers every upload is spooled once, by the worker that served it, and delivered', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'root'));
    const ep = await endpoint();
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, workers: 2, passwordCost: 10, users: [{ username: 'u', password: 'pw', root: 'root' }], hooks: [httpHook(ep.port)], spoolDir: 'spool' }),
    );
    const d = await daemon(dir);
    const clients = await Promise.all(Array.from({ length: 6 }, () => login(d.port)));
    await Promise.all(clients.map((c, i) => c.writeFile(`/w${i}.txt`, String(i))));
    await Promise.all(clients.map((c) => c.end()));
    await until(() => ep.received.length >= 6, 'six notifications');
    expect(await d.stop('SIGTERM')).toBe(0);

    // Stopped: whatever had been spooled twice would be delivered twice by now, or still be on disk.
    expect(ep.received.map((r) => r.payload.record['path']).sort()).toEqual(['/w0.txt', '/w1.txt', '/w2.txt', '/w3.txt', '/w4.txt', '/w5.txt']);
    expect(new Set(ep.received.map((r) => r.payload.record['worker'])).size).toBe(2);
    expect(await spooled(join(dir, 'spool'))).toEqual([]);
    expect((await readdir(join(dir, 'spool', 'web'))).sort()).toEqual(['w1', 'w2']);
  });

  it('check-config names each hook mistake by its JSON path, and refuses a spool inside a root', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'root'));
    const user = { username: 'u', password: 'pw', root: 'root' };
    await writeFile(
      join(dir, 'bad.json'),
      JSON.stringify({
        users: [user],
        hooks: [
          { name: 'Web Hook', events: ['upload', 'uplaod'], http: { url: 'ftp://example.com/' } },
          { name: 'both', events: ['login'], command: { argv: ['/bin/true'] }, http: { url: 'http://127.0.0.1/' } },
        ],
      }),
    );
    const r = await runCli(['check-config', 'bad.json'], dir);
    expect(r.code).toBe(78);
    for (const path of ['hooks[0].name', 'hooks[0].events[1]', 'hooks[0].http.url', 'hooks[1]']) expect(r.stderr).toContain(path);
    expect(r.stderr).toContain('expected exactly one of "command" or "http"');

    await writeFile(join(dir, 'inside.json'), JSON.stringify({ users: [user], hooks: [{ name: 'ok', events: ['upload'], command: { argv: ['/bin/true'] } }], spoolDir: 'root/spool' }));
    const inside = await runCli(['check-config', 'inside.json'], dir);
    expect(inside.code).toBe(78);
    expect(inside.stderr).toMatch(/spoolDir.*inside the root of "u"/);

    await writeFile(join(dir, 'good.json'), JSON.stringify({ users: [user], hooks: [{ name: 'ok', events: ['upload'], command: { argv: ['/bin/true'] } }] }));
    const good = await runCli(['check-config', 'good.json'], dir);
    expect(good.stdout).toContain('OK (1 user, 1 hook)');
  });
});
