/**
 * lftp 4.9.2 (sftp://), running OpenSSH's ssh as its connect program with this file's options
 * (known_hosts, the cell's auth options, `-E log -v` so the log tells which method logged in); lftp
 * answers ssh's password prompts itself. The op cells run in one password session fed on stdin, an
 * `echo` marker ending each reply. lftp sends names as raw bytes (no charset is set for SFTP v3).
 * Absent cells: realpath-dotdot (lftp normalises paths itself and sends no REALPATH for `cd ..`).
 */
import { describe, it, expect, afterAll } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUTH_CELLS, LOCAL, NON_UTF8_NAMES, P, escapeName, title, type AuthCell } from '../../helpers/matrix/cells.js';
import { check } from '../../helpers/matrix/checks.js';
import { basename, lines, opCell, tail } from '../../helpers/matrix/cli.js';
import { keyFileFor } from '../../helpers/matrix/keys.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { keyRefused, loggedInWith, sshAuth } from '../../helpers/matrix/openssh-client.js';
import { Conversation, run } from '../../helpers/matrix/run.js';

const m = useMatrix();
const C = 'lftp';

/** lftp's opening commands for a cell; ssh logs to `log`. */
function opening(cell: AuthCell, log: string): string {
  const a = sshAuth(m.t, cell);
  const ssh = ['ssh', '-a', '-x', ...a.options, '-E', log, '-v'].join(' ');
  const password = a.password ? m.t.password : '';
  return [
    `set sftp:connect-program "${ssh}"`,
    'set net:max-retries 1',
    'set net:timeout 10',
    `open -u ${m.t.user},${password} -p ${m.t.port} sftp://${m.t.host}`,
    '',
  ].join('\n');
}

const names = (out: Buffer) => lines(out).map((l) => escapeName(basename(l.subarray(0, l.at(-1) === 0x2f ? -1 : undefined))));

describe(C, () => {
  for (const cell of AUTH_CELLS) {
    it(title(C, cell), async () => {
      const log = join(await m.tempDir('lftp-ssh'), 'ssh.log');
      const r = await run('lftp', [], { input: `set cmd:fail-exit yes\n${opening(cell, log)}cls -1 /\n`, env: { ...process.env, HOME: await m.tempDir('lftp-home') } });
      const sshLog = await readFile(log, 'utf8').catch(() => '');
      expect(r.code, `lftp: ${tail(r.stderr)}; ssh: ${tail(sshLog)}`).toBe(0);
      expect(names(r.stdout)).toContain('w');
      const method = cell === 'keyboard-interactive' ? 'keyboard-interactive' : cell === 'password' || cell === 'wrongkey-then-password' ? 'password' : 'publickey';
      expect(loggedInWith(sshLog)).toBe(method);
      if (cell === 'wrongkey-then-password') expect(keyRefused(sshLog, keyFileFor(m.t.keys, cell)!), 'the unknown key was offered and refused').toBe(true);
    });
  }

  let session: Conversation | undefined;
  const lftp = async (command: string | Buffer): Promise<Buffer> => {
    if (!session) {
      const dir = await m.tempDir('lftp-session');
      session = new Conversation('lftp', [], (token) => `echo ${token}`, { env: { ...process.env, HOME: dir } });
      await session.send(opening('password', join(dir, 'ssh.log')));
    }
    const r = await session.send(command, 60_000);
    expect(r.err.trim(), `lftp's errors for ${JSON.stringify(command.toString())}`).toBe('');
    return r.out;
  };
  afterAll(async () => {
    await session?.close();
  });
  const local = (name: string) => join(m.local, name);
  const quoted = (name: Buffer) => Buffer.concat([Buffer.from(`"${P.base}/`), name, Buffer.from('"')]);

  opCell(m, C, 'list', async () => check.list(names(await lftp(`cls -1 ${P.base}`))));
  opCell(m, C, 'mkdir', async () => {
    await lftp(`mkdir ${P.dir}`);
    await check.mkdir(m);
  });
  opCell(m, C, 'upload-5m', async () => {
    await lftp(`put ${local(LOCAL.up5m)} -o ${P.up5m}`);
    await check.upload5m(m);
  });
  opCell(m, C, 'download-5m', async () => {
    await lftp(`get ${P.dl5m} -o ${local(LOCAL.dl5m)}`);
    await check.download(m, '5m');
  });
  opCell(m, C, 'download-20m', async () => {
    await lftp(`get ${P.dl20m} -o ${local(LOCAL.dl20m)}`);
    await check.download(m, '20m');
  });
  opCell(m, C, 'rename', async () => {
    await lftp(`mv ${P.up5m} ${P.renamed}`);
    await check.rename(m);
  });
  opCell(m, C, 'stat', async () => {
    const line = lines(await lftp(`cls -l ${P.renamed}`)).map(String).find((l) => l.includes(P.renamed));
    check.stat(Number(line?.trim().split(/\s+/)[4]));
  });
  opCell(m, C, 'chmod', async () => {
    await lftp(`chmod 640 ${P.renamed}`);
    await check.chmod(m);
  });
  opCell(m, C, 'symlink-readlink', async () => {
    await lftp(`ln -s ${P.linkTarget} ${P.link}`);
    const line = lines(await lftp(`cls -l ${P.dir}/`)).map(String).find((l) => l.includes(`${P.link}@ -> `));
    await check.symlink(m, line?.split(' -> ')[1]);
  });
  opCell(m, C, 'remove', async () => {
    await lftp(`rm ${P.link}`);
    await lftp(`rm ${P.renamed}`);
    await check.remove(m);
  });
  opCell(m, C, 'rmdir', async () => {
    await lftp(`rmdir ${P.dir}`);
    await check.rmdir(m);
  });
  opCell(m, C, 'non-utf8-name', async () => {
    for (const [i, n] of NON_UTF8_NAMES.entries()) await lftp(Buffer.concat([Buffer.from(`put ${local(LOCAL.nonUtf8[i]!)} -o `), quoted(n)]));
    await check.nonUtf8Uploaded(m, names(await lftp(`cls -1 ${P.base}`)));
    await lftp(Buffer.concat([Buffer.from('get '), quoted(NON_UTF8_NAMES[0]), Buffer.from(` -o ${local(LOCAL.nonUtf8Back)}`)]));
    for (const n of NON_UTF8_NAMES) await lftp(Buffer.concat([Buffer.from('rm '), quoted(n)]));
    await check.nonUtf8Done(m);
  });
});
