/**
 * Temporary roots (src/testing/roots.ts): removed by close(), and by the process's 'exit' when a
 * test never closed its server (a runner timeout, process.exit, an uncaught error).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { startTestServer } from '../../../src/testing.js';
import { liveRootCount } from '../../../src/testing/roots.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * src/testing.ts as one ES module a plain `node` can run (Node 20 runs no TypeScript). It sits under
 * node_modules/.cache so its packages resolve; each source keeps its own import.meta.url, so the
 * addon is found where src/native/addon.ts looks for it.
 */
let bundleDir: string;
let bundle: string;
beforeAll(async () => {
  await mkdir(join(repo, 'node_modules/.cache'), { recursive: true });
  bundleDir = await mkdtemp(join(repo, 'node_modules/.cache/sftp-chroot-roots-test-'));
  bundle = join(bundleDir, 'testing.mjs');
  await build({
    entryPoints: [join(repo, 'src/testing.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    logLevel: 'error',
    plugins: [
      {
        name: 'own-import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\/src\/.*\.ts$/ }, async (args) => ({
            contents: (await readFile(args.path, 'utf8')).replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
            loader: 'ts',
          }));
        },
      },
    ],
  });
});
afterAll(async () => {
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
  await rmdir(join(repo, 'node_modules/.cache')).catch(() => undefined); // only if this file made it and left it empty
});

/** Runs `body` in a child node after starting a test server `s`; resolves with its stdout and exit code. */
function child(body: string, opts: string): Promise<{ code: number | null; out: string }> {
  const script = `import { startTestServer } from ${JSON.stringify(pathToFileURL(bundle).href)};
const s = await startTestServer(${opts});
process.stdout.write(JSON.stringify(s.users.map((u) => u.root)) + '\\n');
${body}`;
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => resolve({ code, out: out + err }));
  });
}

const rootsIn = (out: string): string[] => JSON.parse(out.split('\n')[0]!) as string[];

describe('temporary roots', () => {
  it('close() removes them and stops tracking them, leaving no exit listener behind', async () => {
    const roots = liveRootCount();
    const listeners = process.listenerCount('exit');
    const s = await startTestServer({ users: [{ files: { 'a.txt': 'x' } }, {}] });
    expect(liveRootCount()).toBe(roots + 2);
    await s.close();
    expect(s.users.filter((u) => existsSync(u.root))).toEqual([]);
    expect(liveRootCount()).toBe(roots);
    expect(process.listenerCount('exit')).toBe(listeners);
  });

  it('a process that exits without closing its test server still removes the temporary roots', async () => {
    const r = await child('process.exit(0);', "{ users: [{ files: { 'a.txt': 'x' } }, { files: { 'deep/er/b.txt': 'y' } }] }");
    expect(r.code, r.out).toBe(0);
    const roots = rootsIn(r.out);
    expect(roots).toHaveLength(2);
    expect(roots.filter((p) => existsSync(p))).toEqual([]);
  });

  it('so does a process ended by an uncaught error, and a root the test passed in is kept', async () => {
    const own = await mkdtemp(join(tmpdir(), 'roots-own-'));
    try {
      await writeFile(join(own, 'keep.txt'), 'mine');
      const r = await child("throw new Error('the test failed');", `{ users: [{}, { root: ${JSON.stringify(own)} }] }`);
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain('the test failed');
      const [temporary, given] = rootsIn(r.out);
      expect(given).toBe(own);
      expect(existsSync(temporary!)).toBe(false);
      expect(await readFile(join(own, 'keep.txt'), 'utf8')).toBe('mine');
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});
