/** The matrix's default target: the project's test double, with the matrix's keys authorised. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from '../../../src/testing.js';
import { makeClientKeys } from './keys.js';
import type { Target, TargetFiles } from './target.js';

export async function startDoubleTarget(files: TargetFiles): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), 'matrix-double-'));
  try {
    const keys = await makeClientKeys(dir);
    const s = await startTestServer({
      files: Object.fromEntries(Object.entries(files).map(([p, c]) => [p.replace(/^\//, ''), c])),
      authorizedKeys: [...keys.authorized],
    });
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, s.knownHosts + '\n');
    return {
      kind: 'double',
      host: '127.0.0.1',
      port: s.port,
      user: s.username,
      password: s.password,
      keys,
      knownHostsFile,
      hostKeyFingerprints: Object.fromEntries(s.hostKeys.map((k) => [k.type, k.fingerprint])),
      root: s.root,
      // The audit log names the key type, not the signature algorithm.
      signatureAlgorithms: async () => [],
      close: async () => {
        await s.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
