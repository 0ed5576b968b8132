/**
 * paramiko 2.12 (Debian's python3-paramiko) through drivers/paramiko_driver.py: Transport +
 * SFTPClient for every cell (RSA signature algorithms forced with disabled_algorithms), plus
 * SSHClient.connect(password=…) with an unknown key in ~/.ssh, and get() of a 100 MiB file
 * (prefetch keeps many reads in flight). No cell is absent.
 */
import { describe, it, expect } from 'vitest';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AUTH_CELLS, LOCAL, MiB, OP_CELLS, P, sha256 } from '../../helpers/matrix/cells.js';
import { putOnDisk, removeFromDisk } from '../../helpers/matrix/disk.js';
import { loginOnce } from '../../helpers/matrix/driver.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { pythonDriver } from '../../helpers/matrix/programs.js';
import { scriptedCells } from '../../helpers/matrix/scripted.js';

const m = useMatrix();
const program = async () => pythonDriver('paramiko_driver.py');

describe('paramiko', () => {
  const s = scriptedCells(m, { name: 'paramiko', program, authCells: AUTH_CELLS, opCells: OP_CELLS, extraOps: ['download-100m'] });

  it('paramiko SSHClient.connect(password=…) offers the unknown key it finds in ~/.ssh, then logs in with the password', async () => {
    const home = await m.tempDir('paramiko-home');
    await mkdir(join(home, '.ssh'), { mode: 0o700 });
    await copyFile(m.t.keys.wrong, join(home, '.ssh/id_ecdsa'));
    await copyFile(`${m.t.keys.wrong}.pub`, join(home, '.ssh/id_ecdsa.pub'));
    const line = await loginOnce(await program(), m.t, { auth: 'sshclient-wrongkey-then-password', local: m.local, env: { HOME: home } });
    expect(line.ok, `${JSON.stringify(line)}\n${line.stderr}`).toBe(true);
    expect(line.value).toMatchObject({ method: 'password', root: ['w'] });
  });

  it('paramiko get() downloads 100 MiB byte-identical', async () => {
    const data = randomBytes(100 * MiB);
    await putOnDisk(m.t, P.dl100m, data);
    try {
      await s.step('download-100m');
      expect(sha256(await readFile(join(m.local, LOCAL.dl100m)))).toBe(sha256(data));
    } finally {
      await removeFromDisk(m.t, P.dl100m);
      await rm(join(m.local, LOCAL.dl100m), { force: true });
    }
  }, 120_000);
});
