/**
 * rclone 1.60 (Go's x/crypto/ssh and pkg/sftp) with on-the-fly remotes
 * (`:sftp,host=…,port=…,user=…,pass=<rclone obscure>|key_file=…,known_hosts_file=…:`); each op is
 * one rclone run, so one connection per cell. rclone does not say which method logged in, so the
 * auth cells check the login only.
 * Absent cells: rsa-sha2-256 and rsa-sha2-512 (x/crypto picks the RSA algorithm from
 * server-sig-algs: one `rsa` cell instead); keyboard-interactive (rclone offers it only as a fallback
 * of its password); realpath-dotdot (rclone sends REALPATH(".") only); chmod and symlink-readlink
 * (rclone has neither); non-utf8-name (rclone's names are UTF-8 strings: it re-encodes invalid bytes).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { LOCAL, P, RSA_ANY, title, type AuthCell } from '../../helpers/matrix/cells.js';
import { check } from '../../helpers/matrix/checks.js';
import { lines, opCell } from '../../helpers/matrix/cli.js';
import { keyFileFor } from '../../helpers/matrix/keys.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { rsaNote } from '../../helpers/matrix/target.js';
import { run } from '../../helpers/matrix/run.js';

const m = useMatrix();
const C = 'rclone';
const AUTH: AuthCell[] = ['password', 'ed25519', RSA_ANY, 'ecdsa', 'wrongkey-then-password'];
let env: NodeJS.ProcessEnv;
let obscured: string;

beforeAll(async () => {
  env = { ...process.env, HOME: await m.tempDir('rclone-home') };
  obscured = (await run('rclone', ['obscure', '--', m.t.password], { env })).stdout.toString().trim();
});

/** The remote for a cell; `path` is appended (`:sftp,…:/w/m`). */
function remote(cell: AuthCell, path: string): string {
  const key = keyFileFor(m.t.keys, cell);
  const password = cell === 'password' || cell === 'wrongkey-then-password';
  const params = [
    `host=${m.t.host}`, `port=${m.t.port}`, `user=${m.t.user}`, `known_hosts_file=${m.t.knownHostsFile}`,
    ...(password ? [`pass=${obscured}`] : []), ...(key ? [`key_file=${key}`] : []),
    'shell_type=none', 'disable_hashcheck=true',
  ];
  return `:sftp,${params.join(',')}:${path}`;
}

/** An rclone run on the password remote that must succeed. */
async function rclone(...args: string[]): Promise<Buffer> {
  const r = await run('rclone', ['--config', '/dev/null', '-q', '--contimeout', '10s', '--low-level-retries', '1', '--retries', '1', ...args], { env, timeoutMs: 60_000 });
  expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 0, stderr: '' });
  return r.stdout;
}
const on = (path: string) => remote('password', path);

describe(C, () => {
  for (const cell of AUTH) {
    it(title(C, cell), async (ctx) => {
      const r = await run('rclone', ['--config', '/dev/null', '-q', '--low-level-retries', '1', '--retries', '1', 'lsf', remote(cell, '/')], { env });
      expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 0, stderr: '' });
      expect(lines(r.stdout).map(String)).toContain('w/');
      if (cell === RSA_ANY) await ctx.annotate(await rsaNote(m.t));
    });
  }

  const local = (name: string) => join(m.local, name);

  opCell(m, C, 'list', async () => check.list(lines(await rclone('lsf', on(P.base))).map(String)));
  opCell(m, C, 'mkdir', async () => {
    await rclone('mkdir', on(P.dir));
    await check.mkdir(m);
  });
  opCell(m, C, 'upload-5m', async () => {
    await rclone('copyto', local(LOCAL.up5m), on(P.up5m));
    await check.upload5m(m);
  });
  opCell(m, C, 'download-5m', async () => {
    await rclone('copyto', on(P.dl5m), local(LOCAL.dl5m));
    await check.download(m, '5m');
  });
  opCell(m, C, 'download-20m', async () => {
    await rclone('copyto', on(P.dl20m), local(LOCAL.dl20m));
    await check.download(m, '20m');
  });
  opCell(m, C, 'rename', async () => {
    await rclone('moveto', on(P.up5m), on(P.renamed));
    await check.rename(m);
  });
  opCell(m, C, 'stat', async () => {
    const st = JSON.parse((await rclone('lsjson', '--stat', on(P.renamed))).toString()) as { Size?: number };
    check.stat(st.Size);
  });
  opCell(m, C, 'remove', async () => {
    await rclone('deletefile', on(P.link));
    await rclone('deletefile', on(P.renamed));
    await check.remove(m);
  });
  opCell(m, C, 'rmdir', async () => {
    await rclone('rmdir', on(P.dir));
    await check.rmdir(m);
  });
});
