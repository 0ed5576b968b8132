/**
 * OpenSSH scp 9.2 (SFTP protocol, its default), logged in with the password through sshpass; each op
 * is one scp run, so one connection per cell. Only the transfer cells apply: scp cannot list, make
 * directories, rename, stat, chmod, link or remove, and its logins are ssh's own, which the OpenSSH
 * sftp file covers cell by cell. Absent cells: every auth cell, realpath-dotdot, list, mkdir, rename,
 * stat, chmod, symlink-readlink, remove, rmdir, non-utf8-name.
 */
import { describe, expect } from 'vitest';
import { join } from 'node:path';
import { LOCAL, P } from '../../helpers/matrix/cells.js';
import { check } from '../../helpers/matrix/checks.js';
import { opCell } from '../../helpers/matrix/cli.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { sshAuth } from '../../helpers/matrix/openssh-client.js';
import { run } from '../../helpers/matrix/run.js';

const m = useMatrix();
const C = 'OpenSSH scp';

/** One scp run; its exit status and messages are checked after the bytes (a wrong status after a good copy is a smaller fault). */
async function scp(from: string, to: string, checkBytes: () => Promise<void>): Promise<void> {
  const remote = (p: string) => (p.startsWith('/w/') ? `${m.t.user}@${m.t.host}:${p}` : p);
  const args = ['-e', 'scp', '-q', ...sshAuth(m.t, 'password').options, '-o', 'LogLevel=ERROR', '-P', String(m.t.port), remote(from), remote(to)];
  const r = await run('sshpass', args, { env: { ...process.env, SSHPASS: m.t.password }, timeoutMs: 60_000 });
  await checkBytes();
  expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 0, stderr: '' });
}

describe(C, () => {
  opCell(m, C, 'upload-5m', () => scp(join(m.local, LOCAL.up5m), P.up5m, () => check.upload5m(m)));
  opCell(m, C, 'download-5m', () => scp(P.dl5m, join(m.local, LOCAL.dl5m), () => check.download(m, '5m')));
  opCell(m, C, 'download-20m', () => scp(P.dl20m, join(m.local, LOCAL.dl20m), () => check.download(m, '20m')));
});
