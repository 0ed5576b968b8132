/**
 * PuTTY pscp 0.78 (SFTP mode), logged in with the password (keyboard-interactive off, see putty.ts);
 * each op is one pscp run, so one connection per cell. pscp pipelines its writes like psftp put:
 * the two uploads are each compared byte for byte with the source. Only the transfer cells apply:
 * pscp cannot list, make directories, rename, stat, chmod, link or remove, and its logins are
 * PuTTY's, which the psftp file covers. Absent cells: every auth cell, realpath-dotdot, list, mkdir,
 * rename, stat, chmod, symlink-readlink, remove, rmdir, non-utf8-name.
 */
import { beforeAll, describe, expect } from 'vitest';
import { join } from 'node:path';
import { LOCAL, P } from '../../helpers/matrix/cells.js';
import { check } from '../../helpers/matrix/checks.js';
import { opCell } from '../../helpers/matrix/cli.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { puttyHome, puttyOptions } from '../../helpers/matrix/putty.js';
import { run } from '../../helpers/matrix/run.js';

const m = useMatrix();
const C = 'pscp';
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  const home = await m.tempDir('putty-home');
  await puttyHome(home);
  env = { ...process.env, HOME: home };
});

/** One pscp run; its exit status and messages are checked after the bytes. */
async function pscp(from: string, to: string, checkBytes: () => Promise<void>): Promise<void> {
  const remote = (p: string) => (p.startsWith('/w/') ? `${m.t.user}@${m.t.host}:${p}` : p);
  const r = await run('pscp', ['-q', '-sftp', ...puttyOptions(m.t, 'password'), remote(from), remote(to)], { env, timeoutMs: 60_000 });
  await checkBytes();
  expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 0, stderr: '' });
}

describe(C, () => {
  opCell(m, C, 'upload-5m', () => pscp(join(m.local, LOCAL.up5m), P.up5m, () => check.upload5m(m)));
  opCell(m, C, 'download-5m', () => pscp(P.dl5m, join(m.local, LOCAL.dl5m), () => check.download(m, '5m')));
  opCell(m, C, 'download-20m', () => pscp(P.dl20m, join(m.local, LOCAL.dl20m), () => check.download(m, '20m')));
});
