/**
 * JSch 0.1.54 (Debian's libjsch-java) through drivers/JschDriver.java, compiled at test time with
 * javac into a temporary directory; PEM keys. It verifies the server's ecdsa-sha2-nistp256 host key
 * (JSch 0.1.5x knows no ed25519). It resolves a relative `..` against its own working directory, so
 * realpath-dotdot sends REALPATH("/..") twice.
 * Absent cells: ed25519 (JSch 0.1.5x has no ed25519 keys); rsa-sha2-256 and rsa-sha2-512 (it signs
 * RSA only with ssh-rsa, SHA-1); non-utf8-name (it refuses setFilenameEncoding for SFTP v3 servers,
 * so every name goes out as UTF-8).
 */
import { describe } from 'vitest';
import { OP_CELLS } from '../../helpers/matrix/cells.js';
import { useMatrix } from '../../helpers/matrix/matrix.js';
import { jschDriver } from '../../helpers/matrix/programs.js';
import { scriptedCells } from '../../helpers/matrix/scripted.js';

const m = useMatrix();

describe('JSch', () => {
  scriptedCells(m, {
    name: 'JSch',
    program: async () => jschDriver(await m.tempDir('jsch-driver')),
    authCells: ['password', 'ecdsa', 'wrongkey-then-password', 'keyboard-interactive'],
    opCells: OP_CELLS.filter((c) => c !== 'non-utf8-name'),
    keyFormat: 'pem',
  });
});
