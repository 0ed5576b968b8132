/**
 * asyncssh 2.10 (Debian's python3-asyncssh) through drivers/asyncssh_driver.py: every cell; RSA
 * signature algorithms forced with `signature_algs`, names that are not UTF-8 passed as bytes.
 * asyncssh sends SYMLINK in the standard order (link path first) unless the server's version string
 * says OpenSSH, so it catches a server that reads the arguments the OpenSSH way round. No cell is absent.
 */
import { describe } from 'vitest';
import { AUTH_CELLS, OP_CELLS } from '../../helpers/matrix/cells.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { pythonDriver } from '../../helpers/matrix/programs.js';
import { scriptedCells } from '../../helpers/matrix/scripted.js';

const m = useMatrix();

describe('asyncssh', () => {
  scriptedCells(m, { name: 'asyncssh', program: async () => pythonDriver('asyncssh_driver.py'), authCells: AUTH_CELLS, opCells: OP_CELLS });
});
