import { describe, expect, it } from 'vitest';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gatherBacklogs, spoolFolder } from '../../../src/hooks/layout.js';
import { tempDir } from './helpers.js';

/** Writes notification files (their content does not matter here) into `folder`. */
async function put(folder: string, ...names: string[]): Promise<void> {
  await mkdir(folder, { recursive: true });
  for (const n of names) await writeFile(join(folder, n), '{}');
}

/** Every file under `dir`, as paths relative to it, sorted. */
async function files(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true, recursive: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('spool layout', () => {
  it('gives one process the hook folder and each worker slot a folder of its own inside it', () => {
    expect(spoolFolder('/s', 'web')).toBe('/s/web');
    expect(spoolFolder('/s', 'web', 2)).toBe('/s/web/w2');
  });

  it('moves, for two workers, a single process\'s backlog and that of a third worker to worker 1, leaving worker 2\'s and other hooks\' alone', async () => {
    const dir = await tempDir();
    await put(join(dir, 'web'), '1-a.json', '.tmp-1-x.json');
    await put(join(dir, 'web', 'w1'), '2-b.json');
    await put(join(dir, 'web', 'w2'), '3-c.json');
    await put(join(dir, 'web', 'w3'), '4-d.json');
    await put(join(dir, 'other'), '5-e.json');

    expect(await gatherBacklogs(dir, ['web'], 2)).toBe(2);
    expect(await files(dir)).toEqual(['other/5-e.json', 'web/.tmp-1-x.json', 'web/w1/1-a.json', 'web/w1/2-b.json', 'web/w1/4-d.json', 'web/w2/3-c.json']);
  });

  it('moves, for one process, every worker folder\'s backlog into the hook folder', async () => {
    const dir = await tempDir();
    await put(join(dir, 'web', 'w1'), '1-a.json');
    await put(join(dir, 'web', 'w2'), '2-b.json', '2-c.json.unreadable');

    expect(await gatherBacklogs(dir, ['web', 'never-ran'], 1)).toBe(2);
    expect(await files(dir)).toEqual(['web/1-a.json', 'web/2-b.json', 'web/w2/2-c.json.unreadable']);
  });
});
