/**
 * What a quota should count under a host directory, computed independently of src/quota/: the
 * sizes of regular files and the number of entries (files, directories, symlinks), each inode once.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export async function du(root: string): Promise<{ bytes: number; files: number }> {
  const seen = new Set<string>();
  let bytes = 0;
  const dirs = [root];
  for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
    for (const name of await readdir(dir)) {
      const st = await lstat(join(dir, name));
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (st.isFile()) bytes += st.size;
      if (st.isDirectory()) dirs.push(join(dir, name));
    }
  }
  return { bytes, files: seen.size };
}
