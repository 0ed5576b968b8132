/**
 * A durable queue of notifications for one hook: one small file per notification in the hook's
 * spool directory, written to a temporary name, fsync'd, renamed into place and the directory
 * fsync'd before add() resolves — so an accepted notification survives SIGTERM, `kill -9` and a
 * power cut, and a half-written one is never read back (temporary names are swept at open). Chosen
 * over an embedded database: Node 20 has no built-in SQLite and the npm ones need a compiler or a
 * download at install; a rename into a directory is the one atomic step every Linux filesystem
 * gives. Delivered notifications are unlinked. The queue is bounded (maxItems): beyond it, add()
 * refuses and the caller counts the refusal.
 */
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** What a hook delivers: the audit record and the id receivers de-duplicate on. */
export interface Notification {
  readonly id: string;
  /** The hook event name (upload, download, remove, …). */
  readonly event: string;
  /** When the notification was accepted (ms since the epoch). */
  readonly acceptedAt: number;
  readonly record: Readonly<Record<string, unknown>>;
}

const TMP = '.tmp-';
const SUFFIX = '.json';

export class Spool {
  readonly #dir: string;
  readonly #maxItems: number;
  /** File name → notification, oldest first (names sort by acceptance time, then sequence). */
  readonly #items = new Map<string, Notification>();
  /** add() calls under way: they hold a place, so a burst of them cannot overshoot maxItems. */
  #adding = 0;
  /** Orders, across a restart, notifications accepted within the same millisecond. */
  #seq = 0;

  constructor(dir: string, maxItems: number) {
    this.#dir = dir;
    this.#maxItems = maxItems;
  }

  get depth(): number {
    return this.#items.size;
  }

  /** Age in seconds of the oldest notification not yet delivered (0 when none). */
  oldestAgeSeconds(now = Date.now()): number {
    const first = this.#items.values().next();
    return first.done ? 0 : Math.max(0, (now - first.value.acceptedAt) / 1000);
  }

  /** Creates the directory, removes half-written files, and loads what was accepted before. */
  async open(): Promise<Notification[]> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const names = (await readdir(this.#dir)).sort();
    for (const name of names) {
      if (name.startsWith(TMP)) await unlink(join(this.#dir, name)).catch(() => undefined);
      else if (name.endsWith(SUFFIX)) {
        const n = await readNotification(join(this.#dir, name));
        if (n) this.#items.set(name, n);
        else await rename(join(this.#dir, name), join(this.#dir, `${name}.unreadable`)).catch(() => undefined);
      }
    }
    return [...this.#items.values()];
  }

  /** Stores `n` durably; false when the spool is full. Rejects if the disk refuses the write. */
  async add(n: Notification): Promise<boolean> {
    if (this.#items.size + this.#adding >= this.#maxItems) return false;
    this.#adding++;
    try {
      const name = `${String(n.acceptedAt).padStart(15, '0')}-${String(this.#seq++).padStart(16, '0')}-${n.id}${SUFFIX}`;
      const tmp = join(this.#dir, `${TMP}${name}`);
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(n));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(this.#dir, name)).catch(async (e: unknown) => {
        await rm(tmp, { force: true });
        throw e;
      });
      await syncDir(this.#dir);
      this.#items.set(name, n);
      return true;
    } finally {
      this.#adding--;
    }
  }

  /** Forgets a delivered notification (its file goes). */
  async remove(id: string): Promise<void> {
    for (const [name, n] of this.#items) {
      if (n.id !== id) continue;
      this.#items.delete(name);
      await unlink(join(this.#dir, name)).catch(() => undefined);
      return;
    }
  }
}

async function readNotification(path: string): Promise<Notification | undefined> {
  try {
    const n = JSON.parse(await readFile(path, 'utf8')) as Partial<Notification>;
    if (typeof n.id === 'string' && typeof n.event === 'string' && typeof n.acceptedAt === 'number' && typeof n.record === 'object' && n.record !== null) return n as Notification;
  } catch {
    /* unreadable: set aside by the caller */
  }
  return undefined;
}

/** The rename is durable only once the directory entry is on disk. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
