/**
 * At start, the staging files of atomic uploads an earlier run of this server left (a crash, a
 * `kill -9`) are removed: those with this host's tag, another start's tag and a starting process
 * that is gone (src/sftp/staged-upload.ts), so a live instance on this or another host sharing the
 * roots keeps its own. Walks each root through the jail in the background: logins are not delayed,
 * symlinks are not followed.
 */
import type { Audit } from '../audit/events.js';
import type { UserRecord } from '../config/load.js';
import { Jail } from '../jail/jail.js';
import { isRegular } from '../fs/file-system.js';
import { walk } from '../fs/walk.js';
import { HOST_TAG, parseStagingName, startTag } from '../sftp/staged-upload.js';

/** Whether `name` is a staging file this host left in an earlier run whose process is gone. */
export function isLeftover(name: string, current = startTag(), alive: (pid: number) => boolean = processAlive): boolean {
  const tag = parseStagingName(name);
  if (tag === undefined || tag.host !== HOST_TAG || tag.start === current) return false;
  // Another daemon on this host sharing the roots is still writing it.
  return tag.pid === undefined || !alive(tag.pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** Removes the leftovers under one root; returns how many. */
export async function sweepRoot(root: string): Promise<number> {
  const jail = new Jail(root);
  let removed = 0;
  try {
    await walk(jail, async ({ path, name, stat }) => {
      if (isRegular(stat) && isLeftover(name) && (await jail.remove(path).then(() => true, () => false))) removed++;
    });
  } finally {
    await jail.close();
  }
  return removed;
}

/** Sweeps every root (each once), then says what it removed. Never throws. */
export async function sweepStaged(users: readonly UserRecord[], audit: Audit): Promise<void> {
  let removed = 0;
  for (const root of new Set(users.map((u) => u.root))) removed += await sweepRoot(root).catch(() => 0);
  if (removed > 0) audit.emit({ event: 'server.sweep', message: `removed ${removed} staging file${removed === 1 ? '' : 's'} of uploads cut short by an earlier run`, removed });
}
