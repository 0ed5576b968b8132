/**
 * OpenSSH sftp 9.2: auth cells with `sftp -b -` (keys; BatchMode) or sshpass (password and
 * keyboard-interactive prompts), `ssh -v` telling which method logged in; RSA signature algorithms
 * forced with PubkeyAcceptedAlgorithms. The op cells run in one password session fed one command at
 * a time on stdin (a `!echo` marker ends each reply). sftp sends REALPATH("/..") for both `cd /..` and
 * `cd ..` (it joins relative paths itself), lists names that are not UTF-8 as \ooo (decoded here),
 * and has no READLINK command, so symlink-readlink checks the stored target on disk only.
 * No cell is absent.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { AUTH_CELLS, LOCAL, NON_UTF8_NAMES, P, escapeName, title } from '../../helpers/matrix/cells.js';
import { check } from '../../helpers/matrix/checks.js';
import { basename, lines, opCell, tail } from '../../helpers/matrix/cli.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { keyRefused, loggedInWith, sshAuth, unvis } from '../../helpers/matrix/openssh-client.js';
import { Conversation, run } from '../../helpers/matrix/run.js';
import { keyFileFor } from '../../helpers/matrix/keys.js';

const m = useMatrix();
const C = 'OpenSSH sftp';

/** sftp with the options of an auth cell; key logins in batch mode, password ones through sshpass. */
function sftpArgs(cell: (typeof AUTH_CELLS)[number], extra: string[] = []): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
  const a = sshAuth(m.t, cell);
  const rest = [...a.options, ...extra, '-P', String(m.t.port), `${m.t.user}@${m.t.host}`];
  return a.password
    ? { cmd: 'sshpass', args: ['-e', 'sftp', ...rest], env: { ...process.env, SSHPASS: m.t.password } }
    : { cmd: 'sftp', args: ['-b', '-', ...rest], env: process.env };
}

const names = (out: Buffer) => lines(unvis(out)).filter((l) => !l.toString().startsWith('sftp>') && l.length > 0).map((l) => escapeName(basename(l)));

describe(C, () => {
  for (const cell of AUTH_CELLS) {
    it(title(C, cell), async () => {
      const { cmd, args, env } = sftpArgs(cell, ['-v']);
      const r = await run(cmd, args, { input: 'ls -1 /\n', env });
      expect(r.code, `sftp: ${tail(r.stderr)}`).toBe(0);
      expect(names(r.stdout)).toContain('w');
      const method = cell === 'keyboard-interactive' ? 'keyboard-interactive' : cell === 'password' || cell === 'wrongkey-then-password' ? 'password' : 'publickey';
      expect(loggedInWith(r.stderr)).toBe(method);
      if (cell === 'wrongkey-then-password') expect(keyRefused(r.stderr, keyFileFor(m.t.keys, cell)!), 'the unknown key was offered and refused').toBe(true);
    });
  }

  let session: Conversation | undefined;
  const sftp = async (command: string | Buffer): Promise<Buffer> => {
    if (!session) {
      const { cmd, args, env } = sftpArgs('password', ['-o', 'LogLevel=ERROR']);
      session = new Conversation(cmd, args, (token) => `!echo ${token}`, { env });
    }
    const r = await session.send(command, 60_000);
    const errors = r.err.replace(/^Connected to .*$/m, '').trim();
    expect(errors, `sftp's errors for ${JSON.stringify(command.toString())}`).toBe('');
    return r.out;
  };
  afterAll(async () => {
    await session?.close();
  });
  const local = (name: string) => join(m.local, name);
  const cwd = async () => /Remote working directory: (.*)/.exec((await sftp('pwd')).toString())?.[1];

  opCell(m, C, 'realpath-dotdot', async () => {
    await sftp('cd /..');
    const a = await cwd();
    await sftp('cd /');
    await sftp('cd ..');
    check.realpath([a ?? '', (await cwd()) ?? '']);
  });
  opCell(m, C, 'list', async () => check.list(names(await sftp(`ls -1 ${P.base}`))));
  opCell(m, C, 'mkdir', async () => {
    await sftp(`mkdir ${P.dir}`);
    await check.mkdir(m);
  });
  opCell(m, C, 'upload-5m', async () => {
    await sftp(`put ${local(LOCAL.up5m)} ${P.up5m}`);
    await check.upload5m(m);
  });
  opCell(m, C, 'download-5m', async () => {
    await sftp(`get ${P.dl5m} ${local(LOCAL.dl5m)}`);
    await check.download(m, '5m');
  });
  opCell(m, C, 'download-20m', async () => {
    await sftp(`get ${P.dl20m} ${local(LOCAL.dl20m)}`);
    await check.download(m, '20m');
  });
  opCell(m, C, 'rename', async () => {
    await sftp(`rename ${P.up5m} ${P.renamed}`);
    await check.rename(m);
  });
  opCell(m, C, 'stat', async () => {
    const line = lines(await sftp(`ls -ln ${P.renamed}`)).map(String).find((l) => l.endsWith(P.renamed) && !l.startsWith('sftp>'));
    check.stat(Number(line?.trim().split(/\s+/)[4]));
  });
  opCell(m, C, 'chmod', async () => {
    await sftp(`chmod 640 ${P.renamed}`);
    await check.chmod(m);
  });
  opCell(m, C, 'symlink-readlink', async () => {
    await sftp(`ln -s ${P.linkTarget} ${P.link}`);
    await check.symlink(m, null);
  });
  opCell(m, C, 'remove', async () => {
    await sftp(`rm ${P.link}`);
    await sftp(`rm ${P.renamed}`);
    await check.remove(m);
  });
  opCell(m, C, 'rmdir', async () => {
    await sftp(`rmdir ${P.dir}`);
    await check.rmdir(m);
  });
  opCell(m, C, 'non-utf8-name', async () => {
    const remote = NON_UTF8_NAMES.map((n) => Buffer.concat([Buffer.from(`"${P.base}/`), n, Buffer.from('"')]));
    for (const [i, r] of remote.entries()) await sftp(Buffer.concat([Buffer.from(`put ${local(LOCAL.nonUtf8[i]!)} `), r]));
    await check.nonUtf8Uploaded(m, names(await sftp(`ls -1 ${P.base}`)));
    await sftp(Buffer.concat([Buffer.from('get '), remote[0]!, Buffer.from(` ${local(LOCAL.nonUtf8Back)}`)]));
    for (const r of remote) await sftp(Buffer.concat([Buffer.from('rm '), r]));
    await check.nonUtf8Done(m);
  });
});
