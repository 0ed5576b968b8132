/**
 * ssh2-sftp-client 12 (over ssh2's client) in this process. Each auth cell uses an authHandler that
 * tries exactly its methods, so the method is known; host keys are pinned by fingerprint. SYMLINK
 * and READLINK go through ssh2's SFTP object (ssh2-sftp-client has no method for them); ssh2 sends
 * SYMLINK in the standard order unless the server's version string says OpenSSH.
 * Absent cells: rsa-sha2-256 and rsa-sha2-512 (ssh2 picks the RSA algorithm from server-sig-algs:
 * one `rsa` cell instead); non-utf8-name (ssh2 takes and returns names as JS strings, UTF-8).
 */
import { describe, it, expect, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { AUTH_CELLS, LOCAL, P, RSA_ANY, title, type AuthCell } from '../../helpers/matrix/cells.js';
import { check } from '../../helpers/matrix/checks.js';
import { opCell } from '../../helpers/matrix/cli.js';
import { keyFileFor } from '../../helpers/matrix/keys.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { rsaNote } from '../../helpers/matrix/target.js';

const m = useMatrix();
const C = 'ssh2-sftp-client';
const AUTH: AuthCell[] = [...AUTH_CELLS.filter((c) => !c.startsWith('rsa-sha2-')), RSA_ANY];

const fingerprint = (key: Buffer) => 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');

/** Connects with exactly the methods of `cell`; resolves with the client and how many methods were tried. */
async function connect(cell: AuthCell): Promise<{ c: SftpClient; tried: number }> {
  const username = m.t.user;
  const key = keyFileFor(m.t.keys, cell);
  const password = { type: 'password', username, password: m.t.password };
  const methods: object[] =
    cell === 'password' ? [password]
    : cell === 'keyboard-interactive' ? [{ type: 'keyboard-interactive', username, prompt: (_n: string, _i: string, _l: string, prompts: unknown[], finish: (a: string[]) => void) => finish(prompts.map(() => m.t.password)) }]
    : cell === 'wrongkey-then-password' ? [{ type: 'publickey', username, key: await readFile(key!) }, password]
    : [{ type: 'publickey', username, key: await readFile(key!) }];
  let tried = 0;
  const c = new SftpClient('matrix', { error: () => undefined, end: () => undefined, close: () => undefined });
  await c.connect({
    host: m.t.host,
    port: m.t.port,
    username,
    readyTimeout: 10_000,
    hostVerifier: (k: Buffer) => Object.values(m.t.hostKeyFingerprints).includes(fingerprint(k)),
    authHandler: (_left: unknown, _partial: unknown, next: (m: unknown) => void) => {
      const method = methods[tried++];
      next(method ?? false);
    },
  } as unknown as SftpClient.ConnectOptions);
  return { c, tried };
}

/** ssh2's SFTP object under ssh2-sftp-client. */
const raw = (c: SftpClient) => (c as unknown as { sftp: SFTPWrapper }).sftp;

describe(C, () => {
  for (const cell of AUTH) {
    it(title(C, cell), async (ctx) => {
      const { c, tried } = await connect(cell);
      try {
        expect((await c.list('/')).map((e) => e.name)).toContain('w');
        if (cell === 'wrongkey-then-password') expect(tried, 'the unknown key was offered and refused first').toBe(2);
        if (cell === RSA_ANY) await ctx.annotate(await rsaNote(m.t));
      } finally {
        await c.end();
      }
    });
  }

  let session: Promise<SftpClient> | undefined;
  const sftp = () => (session ??= connect('password').then((s) => s.c));
  afterAll(async () => {
    await session?.then((c) => c.end(), () => undefined);
  });
  const local = (name: string) => join(m.local, name);

  opCell(m, C, 'realpath-dotdot', async () => {
    const c = await sftp();
    check.realpath([await c.realPath('/..'), await c.realPath('..')]);
  });
  opCell(m, C, 'list', async () => check.list((await (await sftp()).list(P.base)).map((e) => e.name)));
  opCell(m, C, 'mkdir', async () => {
    await (await sftp()).mkdir(P.dir);
    await check.mkdir(m);
  });
  opCell(m, C, 'upload-5m', async () => {
    await (await sftp()).put(local(LOCAL.up5m), P.up5m);
    await check.upload5m(m);
  });
  opCell(m, C, 'download-5m', async () => {
    await (await sftp()).get(P.dl5m, local(LOCAL.dl5m));
    await check.download(m, '5m');
  });
  opCell(m, C, 'download-20m', async () => {
    await (await sftp()).fastGet(P.dl20m, local(LOCAL.dl20m));
    await check.download(m, '20m');
  });
  opCell(m, C, 'rename', async () => {
    await (await sftp()).rename(P.up5m, P.renamed);
    await check.rename(m);
  });
  opCell(m, C, 'stat', async () => check.stat((await (await sftp()).stat(P.renamed)).size));
  opCell(m, C, 'chmod', async () => {
    await (await sftp()).chmod(P.renamed, 0o640);
    await check.chmod(m);
  });
  opCell(m, C, 'symlink-readlink', async () => {
    const s = raw(await sftp());
    await new Promise<void>((resolve, reject) => s.symlink(P.linkTarget, P.link, (e) => (e ? reject(e) : resolve())));
    const target = await new Promise<string>((resolve, reject) => s.readlink(P.link, (e, t) => (e ? reject(e) : resolve(t))));
    await check.symlink(m, target);
  });
  opCell(m, C, 'remove', async () => {
    await (await sftp()).delete(P.link);
    await (await sftp()).delete(P.renamed);
    await check.remove(m);
  });
  opCell(m, C, 'rmdir', async () => {
    await (await sftp()).rmdir(P.dir);
    await check.rmdir(m);
  });
});
