/**
 * One client file's setup: a target with the fixture set in /w, the local upload sources, and
 * temporary directories that are all removed after the file's tests (beforeAll/afterAll).
 */
import { afterAll, beforeAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELLO, LOCAL, P, makeFixtures, type Fixtures } from './cells.js';
import { openTarget, type Target } from './target.js';

export interface Matrix {
  readonly t: Target;
  readonly fx: Fixtures;
  /** The local directory: upload sources (LOCAL.up5m, LOCAL.nonUtf8) and download destinations. */
  readonly local: string;
  /** A fresh directory removed after the file's tests (HOME dirs, compiled drivers, …). */
  tempDir(prefix: string): Promise<string>;
}

export function useMatrix(): Matrix {
  let state: { t: Target; fx: Fixtures; local: string } | undefined;
  const temps: string[] = [];
  const ready = () => {
    if (!state) throw new Error('the matrix target is not up (its beforeAll failed)');
    return state;
  };
  const tempDir = async (prefix: string) => {
    const d = await mkdtemp(join(tmpdir(), `matrix-${prefix}-`));
    temps.push(d);
    return d;
  };

  beforeAll(async () => {
    const fx = makeFixtures();
    const local = await tempDir('local');
    await writeFile(join(local, LOCAL.up5m), fx.up5m);
    await Promise.all(LOCAL.nonUtf8.map((n, i) => writeFile(join(local, n), fx.nonUtf8[i]!)));
    const t = await openTarget({ [P.hello]: HELLO, [P.dl5m]: fx.dl5m, [P.dl20m]: fx.dl20m });
    state = { t, fx, local };
  }, 60_000);

  afterAll(async () => {
    await state?.t.close();
    await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
  });

  return {
    get t() {
      return ready().t;
    },
    get fx() {
      return ready().fx;
    },
    get local() {
      return ready().local;
    },
    tempDir,
  };
}
