/**
 * After login, client data is read into one buffer shared by every connection and reused on the
 * next read (src/ssh/socket-tuning.ts, Protocol#setTransientInput in the ssh2 patch). These tests
 * fail if anything that outlives one read still points into that memory: a WRITE handed to the
 * disk after the next read (corrupt files), a KEXINIT kept for the exchange hash (re-exchange fails
 * with "incorrect signature"), a packet whose MAC arrives in the next read ("Invalid MAC").
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { sftpBatch } from '../helpers/openssh.js';
import { connect, OPEN } from '../helpers/sftp-client.js';

let s: TestServer;
let local: string;

beforeAll(async () => {
  s = await startTestServer();
  local = await mkdtemp(join(tmpdir(), 'sftp-input-'));
});
afterAll(async () => {
  await s.close();
  await rm(local, { recursive: true, force: true });
});

const CIPHERS: [string, string[]][] = [
  ['chacha20-poly1305@openssh.com', []],
  ['aes128-gcm@openssh.com', []],
  ['aes256-ctr', ['-o', 'MACs=hmac-sha2-256-etm@openssh.com']],
];

describe('client data read into reused buffers', () => {
  for (const [cipher, extra] of CIPHERS) {
    it(`put and get stay byte-exact through a key re-exchange every 256 KiB (${cipher})`, async () => {
      const data = randomBytes(3 * 1024 * 1024 + 5);
      const name = `rekey-${cipher.replace(/\W/g, '_')}`;
      await writeFile(join(local, `${name}.up`), data);
      const r = await sftpBatch(s, [`put ${name}.up /${name}`, `get /${name} ${name}.down`], {
        cwd: local,
        extra: ['-c', cipher, '-o', 'RekeyLimit=256K', ...extra],
        timeoutMs: 60_000,
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((await s.readFile(`/${name}`)).equals(data)).toBe(true);
      expect((await readFile(join(local, `${name}.down`))).equals(data)).toBe(true);
    });
  }

  it('two clients pipelining 400 small WRITEs each, beside an OpenSSH upload, get exactly their own bytes', async () => {
    const big = randomBytes(4 * 1024 * 1024);
    await writeFile(join(local, 'beside.up'), big);
    const clients = await Promise.all([connect(s), connect(s)]);
    const sent = clients.map(() => randomBytes(400 * 3000));
    const beside = sftpBatch(s, ['put beside.up /beside'], { cwd: local, timeoutMs: 60_000 });
    await Promise.all(
      clients.map(async (c, i) => {
        const h = await c.open(`/small-${i}`, OPEN.WRITE | OPEN.CREAT | OPEN.TRUNC);
        // 50 in flight at a time (under the in-flight limit): each WRITE is one SSH packet, and
        // several lie whole inside one read.
        for (let from = 0; from < sent[i]!.length; from += 50 * 3000) {
          const writes: Promise<void>[] = [];
          for (let o = from; o < Math.min(from + 50 * 3000, sent[i]!.length); o += 3000) writes.push(c.write(h, o, sent[i]!.subarray(o, o + 3000)));
          await Promise.all(writes);
        }
        await c.close(h);
      }),
    );
    const r = await beside;
    expect(r.code).toBe(0);
    for (const c of clients) c.conn.end();
    expect((await s.readFile('/small-0')).equals(sent[0]!)).toBe(true);
    expect((await s.readFile('/small-1')).equals(sent[1]!)).toBe(true);
    expect((await s.readFile('/beside')).equals(big)).toBe(true);
  });

  it('a packet whose MAC is split across two reads still verifies (chacha20-poly1305 and aes128-gcm)', async () => {
    for (const cipher of ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com'] as const) {
      const sock = net.connect(s.port, s.host);
      await once(sock, 'connect');
      sock.setNoDelay(true);
      // Once logged in, every SSH packet leaves in two writes 3 ms apart, cut 8 bytes before its
      // end (inside the 16-byte MAC), so the server reads the body and the MAC's tail separately.
      let split = false;
      let chain = Promise.resolve();
      const write = sock.write.bind(sock) as (b: Buffer) => boolean;
      const pause = () => new Promise<void>((r) => setTimeout(r, 3));
      sock.write = ((chunk: Buffer) => {
        if (!split) return write(chunk);
        const b = Buffer.from(chunk);
        chain = chain.then(async () => {
          write(b.subarray(0, b.length - 8));
          await pause();
          write(b.subarray(b.length - 8));
          await pause();
        });
        return true;
      }) as typeof sock.write;
      const conn = new ssh2.Client();
      conn.on('error', () => undefined);
      const ready = once(conn, 'ready');
      conn.connect({ ...s.connectOptions, sock, algorithms: { cipher: [cipher] } });
      await ready;
      split = true;
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => conn.sftp((e, w) => (e ? reject(e) : resolve(w))));
      const data = randomBytes(20 * 5000);
      const name = `/split-${cipher.slice(0, 6)}`;
      const h = await new Promise<Buffer>((resolve, reject) => sftp.open(name, 'w', (e, hd) => (e ? reject(e) : resolve(hd))));
      for (let o = 0; o < data.length; o += 5000) {
        await new Promise<void>((resolve, reject) => sftp.write(h, data, o, 5000, o, (e) => (e ? reject(e) : resolve())));
      }
      await new Promise<void>((resolve, reject) => sftp.close(h, (e) => (e ? reject(e) : resolve())));
      conn.end();
      expect((await s.readFile(name)).equals(data)).toBe(true);
    }
  });
});
