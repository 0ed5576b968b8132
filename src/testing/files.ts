/**
 * The test double's readFile/writeFile/exists/tree, through the same jail the server uses: a
 * symlink a client planted (say `/slash → /`) resolves inside the root here too, never on the host.
 * Errors name the virtual path and the errno code, as Node's fs does, never a host path or the
 * system call the jail made; after close every helper fails with "test server closed".
 */
import { posix } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { Jail } from '../jail/jail.js';

const isDir = (mode: number) => (mode & 0o170000) === 0o040000;
const code = (e: unknown) => (e as { code?: string }).code;

/** "in/a.csv", "/in/a.csv" and "/../in/a.csv" all name "/in/a.csv". */
export const virtualPath = (p: string) => posix.normalize('/' + p);

/** Thrown (or rejected with) by every helper once the test server is closing or closed. */
export function closedError(what: string): Error {
  return Object.assign(new Error(`test server closed: ${what} was called after close()`), { code: 'ERR_TEST_SERVER_CLOSED' });
}

const DESCRIPTIONS: Record<string, string> = { ENOTREG: 'not a regular file (FIFO, socket or device)' };
function describeCode(c: string): string {
  if (DESCRIPTIONS[c]) return DESCRIPTIONS[c];
  for (const [name, text] of getSystemErrorMap().values()) if (name === c) return text;
  return 'error';
}

export interface VirtualPathError extends Error {
  code: string;
  /** The virtual path the helper was given, normalised ("/in/a.csv"). */
  path: string;
}

export class RootFiles {
  readonly #jail: Jail;
  #closed = false;
  constructor(readonly root: string) {
    this.#jail = new Jail(root);
  }

  /** Runs one helper: refuses after close, and turns jail errors into errors naming `path`. */
  async #named<T>(helper: string, path: string, fn: (vpath: string) => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError(helper);
    const vpath = virtualPath(path);
    try {
      return await fn(vpath);
    } catch (e) {
      if (this.#closed) throw closedError(helper);
      const c = code(e);
      if (typeof c !== 'string') throw e;
      // A fresh error: the jail's own message names its system call, and its stack nothing useful.
      const err = new Error(`${c}: ${describeCode(c)}, ${helper} '${vpath}'`) as VirtualPathError;
      err.code = c;
      err.path = vpath;
      throw err;
    }
  }

  readFile(path: string): Promise<Buffer> {
    return this.#named('readFile', path, (p) => this.#read(p));
  }

  async #read(path: string): Promise<Buffer> {
    const f = await this.#jail.open(path, { read: true, write: false, append: false, creat: false, trunc: false, excl: false }, 0);
    try {
      // A small file was read whole by the open itself.
      if (f.head !== undefined) return f.head;
      const parts: Buffer[] = [];
      for (let pos = 0; ; ) {
        const chunk = Buffer.allocUnsafe(1 << 20);
        const n = await f.read(pos, chunk);
        if (n === 0) break;
        parts.push(chunk.subarray(0, n));
        pos += n;
      }
      return Buffer.concat(parts);
    } finally {
      await f.close();
    }
  }

  /** Creates parent directories, then the file (replacing one that exists). */
  writeFile(path: string, data: string | Buffer): Promise<void> {
    return this.#named('writeFile', path, async (p) => {
      await this.#mkdirs(posix.dirname(p));
      const f = await this.#jail.open(p, { read: false, write: true, append: false, creat: true, trunc: true, excl: false }, 0o644);
      try {
        await f.write(0, Buffer.isBuffer(data) ? data : Buffer.from(data));
      } finally {
        await f.close();
      }
    });
  }

  /** Creates a directory and its parents; one that exists is fine. */
  mkdir(path: string): Promise<void> {
    return this.#named('mkdir', path, (p) => this.#mkdirs(p));
  }

  async #mkdirs(vpath: string): Promise<void> {
    const parts = vpath.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      await this.#jail.mkdir('/' + parts.slice(0, i).join('/'), 0o755).catch((e: unknown) => {
        if (code(e) !== 'EEXIST') throw e;
      });
    }
  }

  exists(path: string): Promise<boolean> {
    return this.#named('exists', path, (p) =>
      this.#jail.stat(p).then(
        () => true,
        (e: unknown) => {
          if (code(e) === 'ENOENT' || code(e) === 'ENOTDIR' || code(e) === 'ELOOP') return false;
          throw e;
        },
      ),
    );
  }

  /** Sorted virtual paths; directories end with "/"; symlinks are listed, not followed. */
  tree(dir = '/'): Promise<string[]> {
    return this.#named('tree', dir, async (p) => (await this.#list(p)).sort());
  }

  async #list(dir: string): Promise<string[]> {
    const out: string[] = [];
    const d = await this.#jail.opendir(dir);
    try {
      for (let batch = await d.next(256); batch.length; batch = await d.next(256)) {
        for (const e of batch) {
          if (e.name === '.' || e.name === '..' || !e.stat) continue;
          const v = posix.join(dir, e.name);
          if (isDir(e.stat.mode)) out.push(v + '/', ...(await this.#list(v)));
          else out.push(v);
        }
      }
    } finally {
      await d.close();
    }
    return out;
  }

  close(): Promise<void> {
    this.#closed = true;
    return this.#jail.close();
  }
}
