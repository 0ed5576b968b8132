/**
 * curl 7.88 with libssh2 1.10 (sftp:// URLs): host keys checked against ~/.ssh/known_hosts (HOME is a
 * temporary directory holding the target's), `-v` telling which method logged in. curl has no
 * interactive mode, so each op is one curl run (one connection per cell); directory and file changes
 * are QUOTE commands (-Q), names that are not UTF-8 are %XX in URLs and raw bytes in a -K config file
 * (Node cannot put them in argv); READLINK shows in curl's listing as `link -> target`.
 * Absent cells: rsa-sha2-256 and rsa-sha2-512 (libssh2 1.10 signs RSA only with ssh-rsa, SHA-1,
 * which OpenSSH 9.2 refuses too); keyboard-interactive (curl cannot be told to use it; it is only
 * its fallback after password); realpath-dotdot (curl sends no REALPATH but "." at login); stat
 * (curl has no stat; its listing shows READDIR's long names).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LOCAL, NON_UTF8_NAMES, P, escapeName, title, type AuthCell } from '../../helpers/matrix/cells.js';
import { check } from '../../helpers/matrix/checks.js';
import { lines, opCell, tail } from '../../helpers/matrix/cli.js';
import { keyFileFor } from '../../helpers/matrix/keys.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { run, type RunResult } from '../../helpers/matrix/run.js';

const m = useMatrix();
const C = 'curl';
const AUTH: AuthCell[] = ['password', 'ed25519', 'ecdsa', 'wrongkey-then-password'];
let home: string;

beforeAll(async () => {
  home = await m.tempDir('curl-home');
  await mkdir(join(home, '.ssh'), { mode: 0o700 });
  await copyFile(m.t.knownHostsFile, join(home, '.ssh/known_hosts'));
});

const url = (path: string) => `sftp://${m.t.host}:${m.t.port}${path}`;

function authArgs(cell: AuthCell): string[] {
  const key = keyFileFor(m.t.keys, cell);
  const password = cell === 'password' || cell === 'wrongkey-then-password' ? m.t.password : '';
  return ['-u', `${m.t.user}:${password}`, ...(key ? ['--key', key, '--pubkey', `${key}.pub`] : [])];
}

/** curl with the password; `config` is a -K file's content (for arguments that are not UTF-8). */
async function curl(args: string[], opts: { config?: Buffer } = {}): Promise<RunResult> {
  const extra: string[] = [];
  if (opts.config) {
    extra.push('-K', join(home, 'quote.cfg'));
    await writeFile(extra[1]!, opts.config);
  }
  return run('curl', ['-sS', '--connect-timeout', '10', ...authArgs('password'), ...extra, ...args], { env: { ...process.env, HOME: home }, timeoutMs: 60_000 });
}

/** A curl run that must succeed. */
async function ok(args: string[], opts: { config?: Buffer } = {}): Promise<Buffer> {
  const r = await curl(args, opts);
  expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 0, stderr: '' });
  return r.stdout;
}

/** QUOTE commands run against /w (-I: nothing is transferred afterwards). */
const quote = (...commands: string[]) => ok(['-I', ...commands.flatMap((c) => ['-Q', c]), url(`${P.base}/`)]);
const names = (out: Buffer) => lines(out).map(escapeName).filter((n) => n !== '.' && n !== '..');
const pct = (name: Buffer) => [...name].map((b) => (b >= 0x21 && b < 0x7f && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');

describe(C, () => {
  for (const cell of AUTH) {
    it(title(C, cell), async () => {
      const r = await run('curl', ['-sS', '-v', '--connect-timeout', '10', ...authArgs(cell), '-l', url('/')], { env: { ...process.env, HOME: home } });
      expect(r.code, `curl: ${tail(r.stderr)}`).toBe(0);
      expect(names(r.stdout)).toContain('w');
      const method = r.stderr.includes('Initialized password authentication') ? 'password' : 'publickey';
      expect(method).toBe(cell === 'password' || cell === 'wrongkey-then-password' ? 'password' : 'publickey');
      if (cell === 'wrongkey-then-password') expect(r.stderr, 'the unknown key was offered and refused').toContain('SSH public key authentication failed');
    });
  }

  const local = (name: string) => join(m.local, name);

  opCell(m, C, 'list', async () => check.list(names(await ok(['-l', url(`${P.base}/`)]))));
  opCell(m, C, 'mkdir', async () => {
    await quote(`mkdir ${P.dir}`);
    await check.mkdir(m);
  });
  opCell(m, C, 'upload-5m', async () => {
    await ok(['-T', local(LOCAL.up5m), url(P.up5m)]);
    await check.upload5m(m);
  });
  opCell(m, C, 'download-5m', async () => {
    await ok(['-o', local(LOCAL.dl5m), url(P.dl5m)]);
    await check.download(m, '5m');
  });
  opCell(m, C, 'download-20m', async () => {
    await ok(['-o', local(LOCAL.dl20m), url(P.dl20m)]);
    await check.download(m, '20m');
  });
  opCell(m, C, 'rename', async () => {
    await quote(`rename ${P.up5m} ${P.renamed}`);
    await check.rename(m);
  });
  opCell(m, C, 'chmod', async () => {
    await quote(`chmod 640 ${P.renamed}`);
    await check.chmod(m);
  });
  opCell(m, C, 'symlink-readlink', async () => {
    // curl's order: symlink <target> <link>.
    await quote(`symlink ${P.linkTarget} ${P.link}`);
    const listed = lines(await ok([url(`${P.dir}/`)])).map(String).find((l) => / link -> /.test(l));
    await check.symlink(m, listed?.split(' -> ')[1]);
  });
  opCell(m, C, 'remove', async () => {
    await quote(`rm ${P.link}`, `rm ${P.renamed}`);
    await check.remove(m);
  });
  opCell(m, C, 'rmdir', async () => {
    await quote(`rmdir ${P.dir}`);
    await check.rmdir(m);
  });
  opCell(m, C, 'non-utf8-name', async () => {
    for (const [i, n] of NON_UTF8_NAMES.entries()) await ok(['-T', local(LOCAL.nonUtf8[i]!), url(`${P.base}/${pct(n)}`)]);
    await check.nonUtf8Uploaded(m, names(await ok(['-l', url(`${P.base}/`)])));
    await ok(['-o', local(LOCAL.nonUtf8Back), url(`${P.base}/${pct(NON_UTF8_NAMES[0])}`)]);
    const rm = NON_UTF8_NAMES.map((n) => Buffer.concat([Buffer.from(`quote = "rm ${P.base}/`), n, Buffer.from('"\n')]));
    await ok(['-I', url(`${P.base}/`)], { config: Buffer.concat(rm) });
    await check.nonUtf8Done(m);
  });
});
