import { describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Spool, type Notification } from '../../../src/hooks/spool.js';
import { tempDir } from './helpers.js';

const note = (id: string, acceptedAt: number, record: Record<string, unknown> = { path: `/in/${id}` }): Notification => ({ id, event: 'upload', acceptedAt, record });

async function opened(dir: string, max = 100): Promise<[Spool, Notification[]]> {
  const s = new Spool(dir, max);
  return [s, await s.open()];
}

describe('Spool', () => {
  it('gives a new Spool on the same directory every accepted notification, in the order accepted (durable across a restart)', async () => {
    const dir = await tempDir();
    const [a] = await opened(dir);
    const added = [note('zz', 1_000, { path: '/in/a.csv', user: 'alice' }), note('mm', 2_000), note('aa', 3_000)];
    for (const n of added) expect(await a.add(n)).toBe(true);

    const [b, loaded] = await opened(dir);
    expect(loaded).toEqual(added);
    expect(b.depth).toBe(3);
  });

  it('keeps the order of notifications accepted within the same millisecond across a restart', async () => {
    const dir = await tempDir();
    const [a] = await opened(dir);
    const ids = ['c', 'a', 'b', 'f', 'd', 'e'];
    for (const id of ids) await a.add(note(id, 5_000));

    const [, loaded] = await opened(dir);
    expect(loaded.map((n) => n.id)).toEqual(ids);
  });

  it('removes a half-written temporary file at open and does not return it', async () => {
    const dir = await tempDir();
    const [a] = await opened(dir);
    await a.add(note('kept', 1_000));
    await writeFile(join(dir, '.tmp-000000000002000-half.json'), '{"id":"half","event":"upl');

    const [b, loaded] = await opened(dir);
    expect(loaded.map((n) => n.id)).toEqual(['kept']);
    expect(b.depth).toBe(1);
    expect((await readdir(dir)).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  });

  it('sets an unreadable or malformed .json aside as .unreadable, without returning it or failing the open', async () => {
    const dir = await tempDir();
    const [a] = await opened(dir);
    await a.add(note('good', 3_000));
    await writeFile(join(dir, '000000000001000-garbage.json'), 'not json at all');
    await writeFile(join(dir, '000000000002000-shape.json'), JSON.stringify({ id: 'shape', event: 'upload' }));

    const [b, loaded] = await opened(dir);
    expect(loaded.map((n) => n.id)).toEqual(['good']);
    expect(b.depth).toBe(1);
    const files = await readdir(dir);
    expect(files).toContain('000000000001000-garbage.json.unreadable');
    expect(files).toContain('000000000002000-shape.json.unreadable');
    expect(files).not.toContain('000000000001000-garbage.json');
    expect(await readFile(join(dir, '000000000001000-garbage.json.unreadable'), 'utf8')).toBe('not json at all');

    // Set aside once: the next open neither returns nor renames it again.
    const [, again] = await opened(dir);
    expect(again.map((n) => n.id)).toEqual(['good']);
    expect((await readdir(dir)).filter((f) => f.endsWith('.unreadable')).sort()).toEqual(['000000000001000-garbage.json.unreadable', '000000000002000-shape.json.unreadable']);
  });

  it('refuses add() beyond maxItems (false, nothing written) and accepts again once one is removed', async () => {
    const dir = await tempDir();
    const [s] = await opened(dir, 2);
    expect(await s.add(note('1', 1))).toBe(true);
    expect(await s.add(note('2', 2))).toBe(true);
    expect(await s.add(note('3', 3))).toBe(false);
    expect(s.depth).toBe(2);
    expect((await readdir(dir)).some((f) => f.includes('-3.json'))).toBe(false);

    await s.remove('1');
    expect(await s.add(note('4', 4))).toBe(true);
    const [, loaded] = await opened(dir);
    expect(loaded.map((n) => n.id)).toEqual(['2', '4']);
  });

  it('holds to maxItems when many add() calls run at once (a burst of records)', async () => {
    const dir = await tempDir();
    const [s] = await opened(dir, 3);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => s.add(note(`n${i}`, 1_000 + i))));
    expect(results.filter(Boolean)).toHaveLength(3);
    expect(s.depth).toBe(3);
    expect((await readdir(dir)).filter((f) => f.endsWith('.json'))).toHaveLength(3);
  });

  it('remove() deletes the notification\'s file, so a new Spool does not return it', async () => {
    const dir = await tempDir();
    const [s] = await opened(dir);
    await s.add(note('a', 1));
    await s.add(note('b', 2));
    expect((await readdir(dir)).filter((f) => f.endsWith('.json'))).toHaveLength(2);

    await s.remove('a');
    expect(s.depth).toBe(1);
    const files = await readdir(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toContain('-b.json');
    await s.remove('unknown'); // harmless
    const [, loaded] = await opened(dir);
    expect(loaded.map((n) => n.id)).toEqual(['b']);
  });

  it('reports depth and the age of the oldest undelivered notification (0 when empty)', async () => {
    const dir = await tempDir();
    const [s] = await opened(dir);
    expect(s.depth).toBe(0);
    expect(s.oldestAgeSeconds(50_000)).toBe(0);

    await s.add(note('old', 10_000));
    await s.add(note('new', 40_000));
    expect(s.depth).toBe(2);
    expect(s.oldestAgeSeconds(50_000)).toBe(40);

    await s.remove('old');
    expect(s.depth).toBe(1);
    expect(s.oldestAgeSeconds(50_000)).toBe(10);
    expect(s.oldestAgeSeconds(30_000)).toBe(0); // never negative (clock behind)

    const [reopened] = await opened(dir);
    expect(reopened.oldestAgeSeconds(50_000)).toBe(10);
  });
});
