/**
 * The start-up walk: every inode below a root, through a FileSystem on that root (the jail), never
 * following symlinks (readdir's stats are lstats). Directories it cannot read are left out, as du
 * does; it runs in the background, a batch at a time, so logins are not delayed.
 */
import type { FileStat, FileSystem } from '../fs/file-system.js';
import { isDirectory, isRegular } from './usage.js';

export interface WalkOptions {
  /** Regular files left out by name (staging files a concurrent sweep removes). */
  skip?: ((name: string) => boolean) | undefined;
  /** Entries read per readdir (default 256). */
  batch?: number;
  /** Asked before each batch: true ends the walk early (the server is closing). */
  stop?: () => boolean;
}

export async function walk(fs: FileSystem, met: (stat: FileStat) => void, opts: WalkOptions = {}): Promise<void> {
  const dirs = ['/'];
  for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
    const reader = await fs.opendir(dir).catch(() => undefined);
    if (!reader) continue;
    if (opts.stop?.()) dirs.length = 0;
    try {
      for (let batch = await reader.next(opts.batch ?? 256); batch.length > 0 && opts.stop?.() !== true; batch = await reader.next(opts.batch ?? 256)) {
        for (const { name, stat } of batch) {
          if (name === '.' || name === '..' || stat === null) continue;
          if (opts.skip?.(name) && isRegular(stat)) continue;
          met(stat);
          if (isDirectory(stat)) dirs.push(dir === '/' ? `/${name}` : `${dir}/${name}`);
        }
      }
    } catch {
      // A directory removed while read: what was read of it counts.
    } finally {
      await reader.close().catch(() => undefined);
    }
  }
}
