/**
 * A walk of every entry below a root through a FileSystem (a jail, so it stays confined): readdir's
 * stats are lstats, so symlinks are never followed; a directory that cannot be read is left out, as
 * du does. A batch of entries at a time, in the background. The start-up sweep of staging files
 * (src/server/sweep-staged.ts) and the quota walk (src/server/quota.ts) both use it.
 */
import { isDirectory, type FileStat, type FileSystem } from './file-system.js';

export interface WalkEntry {
  /** Virtual path of the entry. */
  readonly path: string;
  readonly name: string;
  readonly stat: FileStat;
}

export interface WalkOptions {
  /** Entries read per readdir (default 256). */
  batch?: number;
  /** Asked before each batch: true ends the walk early (the server is closing). */
  stop?: () => boolean;
}

/** Calls `visit` for each entry below `/` (awaited when it returns a promise), directories before what they hold. */
export async function walk(fs: FileSystem, visit: (e: WalkEntry) => void | Promise<void>, opts: WalkOptions = {}): Promise<void> {
  const batchSize = opts.batch ?? 256;
  const dirs = ['/'];
  for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
    const reader = await fs.opendir(dir).catch(() => undefined);
    if (!reader) continue;
    if (opts.stop?.()) dirs.length = 0;
    try {
      for (let batch = await reader.next(batchSize); batch.length > 0 && opts.stop?.() !== true; batch = await reader.next(batchSize)) {
        for (const { name, stat } of batch) {
          if (name === '.' || name === '..' || stat === null) continue;
          const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
          await visit({ path, name, stat });
          if (isDirectory(stat)) dirs.push(path);
        }
      }
    } catch {
      // A directory removed while read: what was read of it counts.
    } finally {
      await reader.close().catch(() => undefined);
    }
  }
}
