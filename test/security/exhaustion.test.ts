import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createConnection, type Socket } from 'node:net';
import { mkdirSync, writeFileSync, symlinkSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { connect, type SftpClient } from '../helpers/sftp-client.js';
import { RawSftp, FXP, PFLAG, packet, str, u32 } from '../helpers/raw-sftp.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    files: { 'f.txt': 'hello', 'big/': null },
    config: { limits: { loginGraceSeconds: 2, maxStartups: '20:50:40', maxConnectionsPerSource: 1000, maxConnections: 1000 } },
  });
  for (let i = 0; i < 20_000; i++) writeFileSync(join(s.root, 'big', `entry-${String(i).padStart(6, '0')}`), '');
});
afterAll(async () => {
  await s.close();
});

/** A bystander that must keep getting correct answers while the server is under attack. */
async function bystander(c: SftpClient): Promise<void> {
  expect(String(await c.readFile('/f.txt'))).toBe('hello');
  expect(await c.realpath('.')).toBe('/');
}

describe('exhaustion: the server keeps serving everyone else with bounded memory', () => {
  it('two hundred concurrent sessions each get correct answers', async () => {
    const clients = await Promise.all(Array.from({ length: 200 }, () => connect(s)));
    try {
      const results = await Promise.all(clients.map((c) => c.readFile('/f.txt').then(String)));
      expect(new Set(results)).toEqual(new Set(['hello']));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('connections that never authenticate are refused beyond maxStartups and closed after the grace time', async () => {
    const c = await connect(s);
    const sockets: Socket[] = [];
    const closed: Promise<void>[] = [];
    for (let i = 0; i < 60; i++) {
      const sock = createConnection({ host: '127.0.0.1', port: s.port });
      sock.on('error', () => undefined);
      sock.on('data', () => undefined);
      closed.push(new Promise((r) => sock.on('close', () => r())));
      sockets.push(sock);
      // Send an ident and stall: counted as an unauthenticated startup.
      sock.write('SSH-2.0-stall\r\n');
    }
    await bystander(c);
    await Promise.race([Promise.all(closed), new Promise((_, rej) => setTimeout(() => rej(new Error('not all closed')), 8000))]);
    const refused = s.events.filter((e) => e.event === 'request.refused' && e.why === 'too-many-startups');
    expect(refused.length).toBeGreaterThanOrEqual(20);
    expect(s.events.filter((e) => e.event === 'request.refused' && e.why === 'login-grace-exceeded').length).toBeGreaterThan(0);
    await bystander(c);
    await c.end();
  });

  it('listing a 20,000-entry directory is sent in batches while another session is served', async () => {
    const a = await connect(s);
    const b = await connect(s);
    const before = process.memoryUsage().rss;
    const listing = a.list('/big');
    await bystander(b);
    const names = await listing;
    expect(names.filter((n) => n.filename.startsWith('entry-'))).toHaveLength(20_000);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    await Promise.all([a.end(), b.end()]);
  });

  it('a tree deeper than the path limit and long symlink chains end in clear statuses', async () => {
    const c = await connect(s);
    let path = '';
    let failed: unknown;
    for (let i = 0; i < 1200; i++) {
      path += '/dddd';
      try {
        await c.mkdir(path);
      } catch (e) {
        failed = e;
        break;
      }
    }
    expect(failed).toMatchObject({ code: 5 }); // BAD_MESSAGE: path too long
    // A chain of 60 symlinks: the kernel's 40-link limit answers, the session lives on.
    mkdirSync(join(s.root, 'chain'));
    for (let i = 0; i < 60; i++) symlinkSync(`l${i + 1}`, join(s.root, 'chain', `l${i}`));
    writeFileSync(join(s.root, 'chain', 'l60'), 'end');
    await expect(c.stat('/chain/l0')).rejects.toMatchObject({ code: 2 });
    expect(String(await c.readFile('/chain/l40'))).toBe('end');
    // Exponential expansion l1→l0/l0 … is bounded by the same limit.
    mkdirSync(join(s.root, 'exp'));
    mkdirSync(join(s.root, 'exp', 'x'));
    symlinkSync('x', join(s.root, 'exp', 'e0'));
    for (let i = 1; i < 30; i++) symlinkSync(`e${i - 1}/../e${i - 1}`, join(s.root, 'exp', `e${i}`));
    await expect(c.stat('/exp/e29')).rejects.toMatchObject({ code: 2 });
    await bystander(c);
    await c.end();
  });

  it('a client pipelining thousands of requests is paced, never refused: every request gets its own correct reply', async () => {
    writeFileSync(join(s.root, 'r.bin'), randomBytes(64 * 1024));
    const raw = await RawSftp.open(s);
    try {
      const before = s.events.length;
      const handle = await raw.openHandle('/r.bin', PFLAG.READ);
      // 2,000 READs and 2,000 STATs sent at once: eight times maxRequestsInFlight (256).
      const reads = Array.from({ length: 2000 }, (_, i) => raw.read(handle, (i % 16) * 4096, 4096));
      const stats = Array.from({ length: 2000 }, () => raw.stat('/f.txt'));
      const replies = await Promise.all([...reads, ...stats]);
      expect(replies.slice(0, 2000).every((r) => r.type === FXP.DATA && r.data?.length === 4096)).toBe(true);
      expect(replies.slice(2000).every((r) => r.type === FXP.ATTRS && r.attrs?.size === 5)).toBe(true);
      // 600 OPENs pipelined (beyond maxHandlesPerSession, 512), then a CLOSE for each handle that opened.
      const opens = await Promise.all(Array.from({ length: 600 }, () => raw.open('/f.txt', PFLAG.READ)));
      const handles = opens.filter((r) => r.type === FXP.HANDLE).map((r) => r.handle!);
      expect(handles).toHaveLength(511); // 512 with the one already open
      expect(opens.filter((r) => r.type === FXP.STATUS).every((r) => r.message === 'Too many open handles')).toBe(true);
      const closes = await Promise.all(handles.map((h) => raw.close(h)));
      expect(closes.every((r) => r.type === FXP.STATUS && r.code === 0)).toBe(true);
      await raw.close(handle);
      expect(s.events.slice(before).filter((e) => e.event === 'request.refused')).toEqual([]);
    } finally {
      await raw.end();
    }
    const c = await connect(s);
    await bystander(c);
    await c.end();
  });

  it('a client that sends requests and never reads the replies is paced: the server stops granting it window', async () => {
    const raw = await RawSftp.open(s);
    try {
      // Stop reading: ssh2's client then grants the server no more window, so replies back up there.
      raw.channel.pause();
      const outgoing = (raw.channel as unknown as { outgoing: { window: number } }).outgoing;
      const stat = (id: number) => packet(FXP.STAT, Buffer.concat([u32(id), str('/f.txt')]));
      let id = 1_000_000;
      let stalledFor = 0;
      // Up to 2 M STATs (~36 MiB): unpaced, the server would read them all and queue every reply.
      // A stall of 1.5 s, not a passing one while the in-flight cap waits for the thread pool.
      for (let batch = 0; batch < 500 && stalledFor < 75; batch++) {
        if (outgoing.window === 0) stalledFor++;
        else {
          stalledFor = 0;
          const burst: Buffer[] = [];
          for (let i = 0; i < 4000; i++) burst.push(stat(id++));
          raw.channel.write(Buffer.concat(burst));
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(stalledFor, 'the client could keep sending: the server kept granting window').toBe(75);
      // What the server took before it stopped: its reply backlog, one window of replies, one of requests.
      expect(id - 1_000_000).toBeLessThan(500_000);
    } finally {
      raw.channel.destroy();
      await raw.end();
    }
    const c = await connect(s);
    await bystander(c);
    await c.end();
  });

  it('the 20,000 fixture entries are still there (nothing was lost to the listing)', () => {
    expect(readdirSync(join(s.root, 'big'))).toHaveLength(20_000);
  });
});
