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
import { HOST_TAG, parseStagingName, startTag } from '../sftp/staged-upload.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

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
    const dirs = ['/'];
    for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
      const reader = await jail.opendir(dir).catch(() => undefined);
      if (!reader) continue;
      try {
        for (let batch = await reader.next(256); batch.length > 0; batch = await reader.next(256)) {
          for (const e of batch) {
            if (e.name === '.' || e.name === '..') continue;
            const path = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
            const type = (e.stat?.mode ?? 0) & S_IFMT;
            if (type === S_IFDIR) dirs.push(path);
            else if (type === S_IFREG && isLeftover(e.name) && (await jail.remove(path).then(() => true, () => false))) removed++;
          }
        }
      } finally {
        await reader.close().catch(() => undefined);
      }
    }
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
