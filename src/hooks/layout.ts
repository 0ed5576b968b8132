/**
 * Where each hook's notifications are kept. One process: `spoolDir/<hook>`. With "workers": N, each
 * worker stores and delivers the records of its own sessions in `spoolDir/<hook>/w<slot>` (slot
 * 1..N, kept by the worker that replaces a crashed one), so no record is spooled twice and no two
 * processes share a folder. A backlog left where no process will look (the daemon ran with more
 * workers before, or with one) is moved, before anything delivers, to where one will.
 */
import { mkdir, open, readdir, rename, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

const WORKER_FOLDER = /^w([1-9]\d*)$/;

/** The spool folder of `hook`; `slot` is the worker's (undefined in a single process). */
export function spoolFolder(spoolDir: string, hook: string, slot?: number): string {
  return slot === undefined ? join(spoolDir, hook) : join(spoolDir, hook, `w${slot}`);
}

/**
 * Moves stored notifications of `hooks` into the folders `workers` processes will read (worker 1's
 * when there are several); returns how many moved. Run while no runner has these folders open.
 * A rename within one filesystem is atomic: each notification is in exactly one folder throughout.
 */
export async function gatherBacklogs(spoolDir: string, hooks: readonly string[], workers: number): Promise<number> {
  let moved = 0;
  for (const hook of hooks) {
    const top = spoolFolder(spoolDir, hook);
    const target = spoolFolder(spoolDir, hook, workers > 1 ? 1 : undefined);
    const sources = (await entries(top))
      .filter((e) => e.isDirectory() && WORKER_FOLDER.test(e.name) && (workers === 1 || Number(WORKER_FOLDER.exec(e.name)![1]) > workers))
      .map((e) => join(top, e.name));
    if (workers > 1) sources.unshift(top);
    for (const from of sources) {
      const names = (await entries(from)).filter((e) => e.isFile() && e.name.endsWith('.json') && !e.name.startsWith('.')).map((e) => e.name);
      if (names.length === 0) continue;
      await mkdir(target, { recursive: true, mode: 0o700 });
      for (const name of names) await rename(join(from, name), join(target, name));
      await syncDir(target);
      moved += names.length;
      if (from !== top) await rmdir(from).catch(() => undefined); // left when it still holds something else
    }
  }
  return moved;
}

async function entries(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
