/**
 * The test double's readFile/writeFile/exists/tree, through the same jail the server uses: a
 * symlink a client planted (say `/slash → /`) resolves inside the root here too, never on the host.
 */
import { posix } from 'node:path';
import { Jail } from '../jail/jail.js';

const isDir = (mode: number) => (mode & 0o170000) === 0o040000;
const code = (e: unknown) => (e as { code?: string }).code;

export class RootFiles {
  readonly #jail: Jail;
  constructor(readonly root: string) {
    this.#jail = new Jail(root);
  }

  async readFile(path: string): Promise<Buffer> {
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

  async writeFile(path: string, data: string | Buffer): Promise<void> {
    const parts = posix.normalize('/' + path).split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      await this.#jail.mkdir('/' + parts.slice(0, i).join('/'), 0o755).catch((e: unknown) => {
        if (code(e) !== 'EEXIST') throw e;
      });
    }
    const f = await this.#jail.open(path, { read: false, write: true, append: false, creat: true, trunc: true, excl: false }, 0o644);
    try {
      await f.write(0, Buffer.isBuffer(data) ? data : Buffer.from(data));
    } finally {
      await f.close();
    }
  }

  exists(path: string): Promise<boolean> {
    return this.#jail.stat(path).then(
      () => true,
      (e: unknown) => {
        if (code(e) === 'ENOENT' || code(e) === 'ENOTDIR' || code(e) === 'ELOOP') return false;
        throw e;
      },
    );
  }

  /** Sorted virtual paths; directories end with "/"; symlinks are listed, not followed. */
  async tree(dir = '/'): Promise<string[]> {
    const out: string[] = [];
    const d = await this.#jail.opendir(dir);
    try {
      for (let batch = await d.next(256); batch.length; batch = await d.next(256)) {
        for (const e of batch) {
          if (e.name === '.' || e.name === '..' || !e.stat) continue;
          const v = posix.join(dir, e.name);
          if (isDir(e.stat.mode)) out.push(v + '/', ...(await this.tree(v)));
          else out.push(v);
        }
      }
    } finally {
      await d.close();
    }
    return out.sort();
  }

  close(): Promise<void> {
    return this.#jail.close();
  }
}
