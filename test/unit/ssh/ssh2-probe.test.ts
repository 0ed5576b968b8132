/**
 * The start-up probe (src/ssh/ssh2-probe.ts): the bundled ssh2 passes it, and an installed copy
 * whose ssh2 lost a patched behaviour (or the whole bundle) refuses to start, naming what is wrong.
 * The broken copies are the built package (dist/) in a temporary folder with one edit each.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ssh2PatchProblems } from '../../../src/ssh/ssh2-probe.js';

const repo = join(import.meta.dirname, '..', '..', '..');
const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** The built package in a temporary folder, its bundled ssh2 passed through `edit`. */
function brokenCopy(edit: (bundle: string) => string | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'sftp-chroot-probe-'));
  made.push(dir);
  cpSync(join(repo, 'package.json'), join(dir, 'package.json'));
  cpSync(join(repo, 'dist'), join(dir, 'dist'), { recursive: true });
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  symlinkSync(join(repo, 'build'), join(dir, 'build'));
  const bundle = join(dir, 'dist', 'vendor', 'ssh2.cjs');
  const edited = edit(readFileSync(bundle, 'utf8'));
  if (edited === undefined) rmSync(bundle);
  else writeFileSync(bundle, edited);
  return dir;
}

function start(dir: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(dir, 'dist', 'cli.js'), '--port', '0'], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('the ssh2 patch probe at start', () => {
  it('finds every patched behaviour in effect in the bundled ssh2', () => {
    expect(ssh2PatchProblems()).toEqual([]);
  });

  it('a copy whose ssh2 lost pauseInput/resumeInput refuses to start and names pacing', () => {
    const dir = brokenCopy((b) => b.replace('pauseInput() {', 'pauseInputRemoved() {'));
    const r = start(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not patched as this server needs: .*pauseInput\/resumeInput/);
  });

  it('a copy whose ssh2 decodes paths as UTF-8 again refuses to start and names namesAsBuffers', () => {
    const dir = brokenCopy((b) => b.replace(/sftp\.namesAsBuffers \?/g, 'false ?'));
    const r = start(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('namesAsBuffers');
  });

  it('a copy without the bundled ssh2 refuses to start and says it is missing', () => {
    const dir = brokenCopy(() => undefined);
    const r = start(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('dist/vendor/ssh2.cjs');
    expect(r.stderr).toMatch(/cannot be loaded/);
  });
});
