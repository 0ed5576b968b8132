/**
 * A whole login and SFTP readdir over mlkem768x25519-sha256 between ssh2's
 * Client, whose ML-KEM-768 is the `mlkem` package, and a server whose ML-KEM is
 * @noble/post-quantum (ssh2's default): two independent implementations must
 * agree on every byte. First against a bare ssh2 Server naming only this kex,
 * then against the project's server once src/server.ts offers it. Also: a
 * handshake that goes wrong fails cleanly on both ends and the server keeps
 * serving.
 */
import net from 'node:net';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ssh2 } from '../../../src/ssh/ssh2.js'; // the patched ssh2 the server runs
import type { Connection, ConnectConfig, FileEntry, SFTPWrapper } from 'ssh2';
import {
  MLKEM768X25519_SHA256,
  mlKem768Provider,
  setMlKem768Provider,
  type MlKem768,
} from '../../../src/ssh/kex/mlkem768x25519.js';
import { PROFILES } from '../../../src/ssh/algorithms.js';
import { startTestServer } from '../../../src/testing.js';
import { dajiajiMlKem768 } from './dajiaji-mlkem768.js';

const { Client, Server, utils } = ssh2;
const STATUS = utils.sftp.STATUS_CODE;
const USER = 'pq';
const PASSWORD = 'pq-login-password';
const KEX_ONLY = { kex: [MLKEM768X25519_SHA256] as never };

interface Counted {
  kem: MlKem768;
  calls: { keygen: number; encapsulate: number; decapsulate: number };
}
function counted(kem: MlKem768): Counted {
  const calls = { keygen: 0, encapsulate: 0, decapsulate: 0 };
  return {
    calls,
    kem: {
      keygen: (seed) => (calls.keygen++, kem.keygen(seed)),
      encapsulate: (pk, m) => (calls.encapsulate++, kem.encapsulate(pk, m)),
      decapsulate: (ct, sk) => (calls.decapsulate++, kem.decapsulate(ct, sk)),
    },
  };
}

let dajiaji: MlKem768;
let server: InstanceType<typeof Server>;
let port = 0;
const serverSide = { kex: [] as string[], errors: [] as string[], closed: 0, ready: [] as Connection[] };

beforeAll(async () => {
  dajiaji = await dajiajiMlKem768();
  server = new Server({ hostKeys: [utils.generateKeyPairSync('ed25519').private], algorithms: KEX_ONLY }, onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterEach(() => {
  setMlKem768Provider(undefined);
});

/** A minimal SFTP server: "/" lists two names. */
function onConnection(conn: Connection): void {
  conn.on('error', (err) => serverSide.errors.push(err.message));
  conn.on('close', () => serverSide.closed++);
  conn.on('handshake', (n) => serverSide.kex.push(n.kex));
  conn.on('ready', () => serverSide.ready.push(conn));
  conn.on('authentication', (ctx) =>
    ctx.method === 'password' && ctx.username === USER && ctx.password === PASSWORD ? ctx.accept() : ctx.reject(['password']),
  );
  conn.on('session', (accept) => {
    accept().on('sftp', (acceptSftp) => {
      const sftp = acceptSftp();
      let listed = false;
      sftp.on('OPENDIR', (id, path) => sftp.handle(id, Buffer.from(path)));
      sftp.on('READDIR', (id) => {
        if (listed) return sftp.status(id, STATUS.EOF);
        listed = true;
        const attrs = { mode: 0o100644, uid: 0, gid: 0, size: 3, atime: 0, mtime: 0 };
        sftp.name(id, ['alpha.txt', 'beta.txt'].map((filename) => ({ filename, longname: filename, attrs })));
      });
      sftp.on('CLOSE', (id) => sftp.status(id, STATUS.OK));
      sftp.on('end', () => sftp.end());
    });
  });
}

interface Outcome {
  clientKex?: string;
  names?: string[];
  error?: Error;
}

/** Connects, logs in, lists "/", disconnects; resolves with what happened. */
function login(cfg: ConnectConfig): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = {};
    const client = new Client();
    const timer = setTimeout(() => finish(new Error('no outcome within 10 s')), 10_000);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      if (error && !out.error) out.error = error;
      client.end();
      resolve(out);
    };
    client.on('handshake', (n) => (out.clientKex = n.kex));
    client.on('error', (err) => finish(err));
    client.on('ready', () => {
      client.sftp((err, sftp: SFTPWrapper) => {
        if (err) return finish(err);
        sftp.readdir('/', (e, list: FileEntry[]) => {
          if (e) return finish(e);
          out.names = list.map((f) => f.filename).sort();
          finish();
        });
      });
    });
    client.connect({ host: '127.0.0.1', port, username: USER, password: PASSWORD, algorithms: KEX_ONLY, ...cfg });
  });
}

describe('mlkem768x25519-sha256 login between two ML-KEM implementations', () => {
  it('logs in and lists a directory with the mlkem-package client against the noble server, both naming the hybrid kex', async () => {
    const client = counted(dajiaji);
    setMlKem768Provider(client.kem, 'client');
    const before = serverSide.kex.length;

    const out = await login({});

    expect(out.error).toBeUndefined();
    expect(out.clientKex).toBe(MLKEM768X25519_SHA256);
    expect(serverSide.kex.slice(before)).toEqual([MLKEM768X25519_SHA256]);
    expect(out.names).toEqual(['alpha.txt', 'beta.txt']);
    expect(client.calls).toEqual({ keygen: 1, encapsulate: 0, decapsulate: 1 });
  });

  it('fails the handshake cleanly when the server sends a corrupted ciphertext, and the server keeps serving', async () => {
    const noble = mlKem768Provider('server');
    setMlKem768Provider(dajiaji, 'client');
    setMlKem768Provider(
      {
        ...noble,
        encapsulate: (pk, m) => {
          const e = noble.encapsulate(pk, m);
          const cipherText = Uint8Array.from(e.cipherText);
          cipherText[7]! ^= 0x40;
          return { cipherText, sharedSecret: e.sharedSecret };
        },
      },
      'server',
    );
    const closedBefore = serverSide.closed;

    const bad = await login({});
    expect(bad.names).toBeUndefined();
    expect(bad.error?.message).toMatch(/signature verification failed/);
    await expect.poll(() => serverSide.closed).toBeGreaterThan(closedBefore);

    setMlKem768Provider(undefined, 'server');
    const good = await login({});
    expect(good.error).toBeUndefined();
    expect(good.names).toEqual(['alpha.txt', 'beta.txt']);
  });

  it('fails the handshake cleanly when the client ML-KEM key has the wrong length, and the server keeps serving', async () => {
    setMlKem768Provider(
      { ...dajiaji, keygen: (seed) => {
        const k = dajiaji.keygen(seed);
        return { publicKey: k.publicKey.subarray(0, 1183), secretKey: k.secretKey };
      } },
      'client',
    );
    const bad = await login({});
    expect(bad.names).toBeUndefined();
    expect(bad.error?.message).toMatch(/mlkem768x25519-sha256: ML-KEM-768 encapsulation key is 1183 bytes, expected 1184/);

    setMlKem768Provider(dajiaji, 'client');
    const good = await login({});
    expect(good.error).toBeUndefined();
    expect(good.clientKex).toBe(MLKEM768X25519_SHA256);
  });

  it('re-keys over the hybrid kex when the server asks in the middle of a session, and keeps serving SFTP', async () => {
    const client = counted(dajiaji);
    setMlKem768Provider(client.kem, 'client');
    const c = new Client();
    const handshakes: string[] = [];
    c.on('handshake', (n) => handshakes.push(n.kex));
    c.connect({ host: '127.0.0.1', port, username: USER, password: PASSWORD, algorithms: KEX_ONLY });
    await once(c, 'ready');
    try {
      await expect.poll(() => serverSide.ready.length).toBeGreaterThan(0);
      const conn = serverSide.ready.at(-1)!;
      await new Promise<void>((res, rej) => conn.rekey((...err: unknown[]) => (err[0] ? rej(err[0]) : res())));
      const sftp = await new Promise<SFTPWrapper>((res, rej) => c.sftp((e, s) => (e ? rej(e) : res(s))));
      const list = await new Promise<FileEntry[]>((res, rej) => sftp.readdir('/', (e, l) => (e ? rej(e) : res(l))));
      expect(list.map((f) => f.filename).sort()).toEqual(['alpha.txt', 'beta.txt']);
      expect(handshakes).toEqual([MLKEM768X25519_SHA256, MLKEM768X25519_SHA256]);
      expect(client.calls.keygen).toBe(2);
    } finally {
      c.end();
    }
  });

  it('the project server offers the hybrid kex first by default', () => {
    expect(PROFILES.compatible.kex[0]).toBe(MLKEM768X25519_SHA256);
    expect(PROFILES.strict.kex[0]).toBe(MLKEM768X25519_SHA256);
  });

  it('logs in to the project server (startTestServer) over the hybrid kex and lists the user root', async () => {
    setMlKem768Provider(dajiaji, 'client');
    await using srv = await startTestServer({ files: { 'one.txt': '1', 'two/': null } });
    const client = new Client();
    const kex = new Promise<string>((resolve) => client.on('handshake', (n) => resolve(n.kex)));
    client.connect({ ...srv.connectOptions, algorithms: KEX_ONLY });
    await once(client, 'ready');
    try {
      const sftp = await new Promise<SFTPWrapper>((res, rej) => client.sftp((e, s) => (e ? rej(e) : res(s))));
      const list = await new Promise<FileEntry[]>((res, rej) => sftp.readdir('/', (e, l) => (e ? rej(e) : res(l))));
      expect(await kex).toBe(MLKEM768X25519_SHA256);
      expect(list.map((f) => f.filename).sort()).toEqual(['one.txt', 'two']);
    } finally {
      client.end();
    }
  });
});
