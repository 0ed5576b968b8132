/**
 * Temporary roots for the test double. Each instance removes its own at close(); a root whose test
 * never closed it (a runner timeout, a process.exit in the middle) is removed when the process exits.
 *
 * The one module-level thing in the test double, on purpose: a single 'exit' listener and the set of
 * roots still present, because an exiting process has no instance left to ask. It holds paths only,
 * and a root leaves the set as soon as close() has removed it; with no root live, no listener stays.
 */
import { rmSync } from 'node:fs';
import { spawnSync, execFile } from 'node:child_process';
import { dir as tmpDir } from 'tmp-promise';

const live = new Set<string>();

/** Synchronous: an 'exit' listener can do nothing else. rm(1) copes with trees deeper than PATH_MAX. */
function removeLiveRoots(): void {
  for (const root of live) {
    try {
      rmSync(root, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      spawnSync('rm', ['-rf', '--one-file-system', root], { stdio: 'ignore' });
    }
  }
  live.clear();
}

function track(root: string): void {
  if (live.size === 0) process.on('exit', removeLiveRoots);
  live.add(root);
}

function untrack(root: string): void {
  if (live.delete(root) && live.size === 0) process.off('exit', removeLiveRoots);
}

function removeDeep(path: string): Promise<void> {
  return new Promise((resolve) => execFile('rm', ['-rf', '--one-file-system', path], () => resolve()));
}

export interface TemporaryRoot {
  readonly path: string;
  /** Removes the directory and everything in it; stops tracking it for the exit listener. */
  remove(): Promise<void>;
}

export async function temporaryRoot(): Promise<TemporaryRoot> {
  const t = await tmpDir({ unsafeCleanup: true, prefix: 'sftp-chroot-test-' });
  track(t.path);
  return {
    path: t.path,
    async remove() {
      // Node's recursive rm gives up on trees deeper than PATH_MAX (a client can make one); rm(1) walks with *at calls.
      await t.cleanup().catch(() => removeDeep(t.path));
      untrack(t.path);
    },
  };
}

/** Roots created and not yet removed, in this process (for tests of this module). */
export function liveRootCount(): number {
  return live.size;
}
