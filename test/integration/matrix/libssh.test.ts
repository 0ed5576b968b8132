/**
 * libssh 0.10 (the system's libssh-dev) through drivers/libssh_driver.c, compiled at test time with
 * cc and pkg-config into a temporary directory: every cell; RSA signature algorithms forced with
 * SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES (libssh then needs the algorithm in the server-sig-algs of
 * an EXT_INFO that arrived before its SERVICE_REQUEST, as OpenSSH sends it). No cell is absent.
 */
import { describe } from 'vitest';
import { AUTH_CELLS, OP_CELLS } from '../../helpers/matrix/cells.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { libsshDriver } from '../../helpers/matrix/programs.js';
import { scriptedCells } from '../../helpers/matrix/scripted.js';

const m = useMatrix();

describe('libssh', () => {
  scriptedCells(m, { name: 'libssh', program: async () => libsshDriver(await m.tempDir('libssh-driver')), authCells: AUTH_CELLS, opCells: OP_CELLS });
});
