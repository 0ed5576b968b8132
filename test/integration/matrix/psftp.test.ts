/**
 * PuTTY psftp 0.78 with .ppk keys made by puttygen and host keys pinned with -hostkey; its event log
 * (-v) tells which method logged in. The op cells run in one password session fed on stdin, a
 * `!echo` marker ending each reply. psftp pipelines its PUT writes (hundreds of 4 KiB writes in flight).
 * Absent cells: rsa-sha2-256 and rsa-sha2-512 (PuTTY picks the RSA signature algorithm from
 * server-sig-algs and has no option for it: one `rsa` cell instead); stat (psftp has no stat command,
 * its ls shows READDIR's long names); symlink-readlink (psftp has no ln or readlink).
 * psftp resolves every path with REALPATH before using it, so it cannot remove a symlink (it
 * removes the target instead, against OpenSSH too): its `remove` cell removes the file only. It
 * prints names without their bytes that are not UTF-8 (`up-.txt`, against OpenSSH too), so
 * non-utf8-name checks the names on disk and the download, not psftp's listing.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { join } from 'node:path';
import { LOCAL, NON_UTF8_NAMES, P, RSA_ANY, escapeName, title, type AuthCell } from '../../helpers/matrix/cells.js';
import { check } from '../../helpers/matrix/checks.js';
import { lines, opCell, tail } from '../../helpers/matrix/cli.js';
import { removeFromDisk } from '../../helpers/matrix/disk.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { rsaNote } from '../../helpers/matrix/target.js';
import { puttyHome, puttyKeyRefused, puttyLoggedInWith, puttyOptions } from '../../helpers/matrix/putty.js';
import { Conversation, run } from '../../helpers/matrix/run.js';

const m = useMatrix();
const C = 'psftp';
const AUTH: AuthCell[] = ['password', 'ed25519', RSA_ANY, 'ecdsa', 'wrongkey-then-password', 'keyboard-interactive'];
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  const home = await m.tempDir('putty-home');
  await puttyHome(home);
  env = { ...process.env, HOME: home };
});

/** Names from psftp's `ls` (the server's long names: the name is the last field). */
const names = (out: Buffer) =>
  lines(out).filter((l) => /^[-dl]/.test(l.toString('latin1'))).map((l) => escapeName(l.subarray(l.lastIndexOf(0x20) + 1)));

describe(C, () => {
  for (const cell of AUTH) {
    it(title(C, cell), async (ctx) => {
      const r = await run('psftp', ['-v', ...puttyOptions(m.t, cell), `${m.t.user}@${m.t.host}`], { input: 'ls /\n', env });
      expect(r.code, `psftp: ${tail(r.stderr)}`).toBe(0);
      expect(names(r.stdout)).toContain('w');
      const method = cell === 'keyboard-interactive' ? 'keyboard-interactive' : cell === 'password' || cell === 'wrongkey-then-password' ? 'password' : 'publickey';
      expect(puttyLoggedInWith(r.stderr)).toBe(method);
      if (cell === 'wrongkey-then-password') expect(puttyKeyRefused(r.stderr), 'the unknown key was offered and refused').toBe(true);
      if (cell === RSA_ANY) await ctx.annotate(await rsaNote(m.t));
    });
  }

  let session: Conversation | undefined;
  const psftp = async (command: string | Buffer): Promise<Buffer> => {
    session ??= new Conversation('psftp', [...puttyOptions(m.t, 'password'), `${m.t.user}@${m.t.host}`], (token) => `!echo ${token}`, { env, prompt: 'psftp> ' });
    const r = await session.send(command, 60_000);
    const said = `${r.out.toString()}${r.err}`;
    expect(/: (failure|no such file|permission denied|.*error|unable to)/i.test(said) ? said : '', `psftp's errors for ${JSON.stringify(command.toString())}`).toBe('');
    return r.out;
  };
  afterAll(async () => {
    await session?.close();
  });
  const local = (name: string) => join(m.local, name);
  const quoted = (name: Buffer) => Buffer.concat([Buffer.from(`"${P.base}/`), name, Buffer.from('"')]);
  const dirNow = (out: Buffer) => /Remote directory is now (.*)/.exec(out.toString())?.[1] ?? out.toString();

  opCell(m, C, 'realpath-dotdot', async () => {
    const a = dirNow(await psftp('cd /..'));
    await psftp('cd /');
    check.realpath([a, dirNow(await psftp('cd ..'))]);
  });
  opCell(m, C, 'list', async () => check.list(names(await psftp(`ls ${P.base}`))));
  opCell(m, C, 'mkdir', async () => {
    await psftp(`mkdir ${P.dir}`);
    await check.mkdir(m);
  });
  opCell(m, C, 'upload-5m', async () => {
    await psftp(`put ${local(LOCAL.up5m)} ${P.up5m}`);
    await check.upload5m(m);
  });
  opCell(m, C, 'download-5m', async () => {
    await psftp(`get ${P.dl5m} ${local(LOCAL.dl5m)}`);
    await check.download(m, '5m');
  });
  opCell(m, C, 'download-20m', async () => {
    await psftp(`get ${P.dl20m} ${local(LOCAL.dl20m)}`);
    await check.download(m, '20m');
  });
  opCell(m, C, 'rename', async () => {
    await psftp(`mv ${P.up5m} ${P.renamed}`);
    await check.rename(m);
  });
  opCell(m, C, 'chmod', async () => {
    await psftp(`chmod 640 ${P.renamed}`);
    await check.chmod(m);
  });
  opCell(m, C, 'remove', async () => {
    await removeFromDisk(m.t, P.link); // psftp cannot remove a symlink (see the header)
    await psftp(`rm ${P.renamed}`);
    await check.remove(m);
  }, { name: 'psftp removes a file' });
  opCell(m, C, 'rmdir', async () => {
    await psftp(`rmdir ${P.dir}`);
    await check.rmdir(m);
  });
  opCell(m, C, 'non-utf8-name', async () => {
    for (const [i, n] of NON_UTF8_NAMES.entries()) await psftp(Buffer.concat([Buffer.from(`put ${local(LOCAL.nonUtf8[i]!)} `), quoted(n)]));
    await psftp(`ls ${P.base}`); // psftp drops bytes that are not UTF-8 when it prints names (see the header)
    await check.nonUtf8Uploaded(m, null);
    await psftp(Buffer.concat([Buffer.from('get '), quoted(NON_UTF8_NAMES[0]), Buffer.from(` ${local(LOCAL.nonUtf8Back)}`)]));
    for (const n of NON_UTF8_NAMES) await psftp(Buffer.concat([Buffer.from('rm '), quoted(n)]));
    await check.nonUtf8Done(m);
  });
});
