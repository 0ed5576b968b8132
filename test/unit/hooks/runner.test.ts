import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Deliver } from '../../../src/hooks/deliver.js';
import { HookRunner, type HookReport } from '../../../src/hooks/runner.js';
import { Spool, type Notification } from '../../../src/hooks/spool.js';
import { hook, tempDir, until } from './helpers.js';

const RETRY_MS = 20;
const runners: HookRunner[] = [];
afterEach(() => {
  for (const r of runners.splice(0)) r.close();
});

function runner(dir: string, deliver: Deliver, over: Record<string, unknown> = {}): { r: HookRunner; reports: HookReport[] } {
  const reports: HookReport[] = [];
  const r = new HookRunner(hook({ name: 'h', ...over }), dir, (x) => reports.push(x), deliver, RETRY_MS);
  runners.push(r);
  return { r, reports };
}

const never: Deliver = () => new Promise<void>(() => undefined);
const of = <K extends HookReport['kind']>(reports: HookReport[], kind: K) => reports.filter((x): x is Extract<HookReport, { kind: K }> => x.kind === kind);

/** What is still on disk for hook "h" under `dir`. */
const onDisk = async (dir: string) => (await new Spool(join(dir, 'h'), 1000).open()).map((n) => n.record);

describe('HookRunner', () => {
  it('retries a failing delivery until it succeeds, delivers it exactly once and reports each failure then the delivery', async () => {
    const dir = await tempDir();
    let calls = 0;
    let successes = 0;
    const { r, reports } = runner(dir, async () => {
      if (++calls <= 3) throw new Error(`receiver down (${calls})`);
      successes++;
    });
    await r.start();
    await r.accept('upload', { path: '/in/a.csv' });
    await until(() => of(reports, 'delivered').length > 0, 'delivery');

    expect(successes).toBe(1);
    expect(calls).toBe(4);
    expect(reports.map((x) => x.kind)).toEqual(['failed', 'failed', 'failed', 'delivered']);
    const failed = of(reports, 'failed');
    expect(failed.map((f) => f.attempt)).toEqual([1, 2, 3]);
    expect(failed.map((f) => f.error)).toEqual(['receiver down (1)', 'receiver down (2)', 'receiver down (3)']);
    expect(failed.map((f) => f.retryInSeconds)).toEqual([0.02, 0.04, 0.08]); // doubling from retryBaseMs
    expect(new Set(reports.map((x) => ('id' in x ? x.id : undefined))).size).toBe(1);
    expect(of(reports, 'delivered')[0]).toMatchObject({ hook: 'h', event: 'upload', attempts: 4 });
    expect(r.failures).toBe(3);
    expect(r.depth).toBe(0);
    expect(await onDisk(dir)).toEqual([]);
  });

  it('never has more deliveries in flight than the hook\'s concurrency', async () => {
    const dir = await tempDir();
    let inFlight = 0;
    let maxInFlight = 0;
    const gates: (() => void)[] = [];
    const tries = new Map<string, number>();
    const { r, reports } = runner(
      dir,
      (n) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const attempt = (tries.get(n.id) ?? 0) + 1;
        tries.set(n.id, attempt);
        return new Promise<void>((resolve, reject) => {
          gates.push(() => {
            inFlight--;
            if (attempt === 1 && (n.record['i'] as number) % 2 === 0) reject(new Error('first try fails'));
            else resolve();
          });
        });
      },
      { command: { argv: ['/bin/true'], concurrency: 3 } },
    );
    await r.start();
    await Promise.all(Array.from({ length: 12 }, (_, i) => r.accept('upload', { i })));
    await until(() => inFlight === 3, 'three in flight');
    while (of(reports, 'delivered').length < 12) {
      await until(() => gates.length > 0 || of(reports, 'delivered').length === 12, 'a delivery to release');
      for (const open of gates.splice(0)) open();
      await new Promise((res) => setImmediate(res));
    }
    expect(maxInFlight).toBe(3);
    expect(of(reports, 'failed')).toHaveLength(6);
    expect(new Set(of(reports, 'delivered').map((d) => d.id)).size).toBe(12);
    expect(r.depth).toBe(0);
  });

  it('delivers, after a restart, what an earlier runner accepted but never delivered (each id at least once)', async () => {
    const dir = await tempDir();
    const seenByFirst: string[] = [];
    const first = runner(dir, (n) => (seenByFirst.push(n.id), never(n)), { command: { argv: ['/bin/true'], concurrency: 2 } });
    await first.r.start();
    for (let i = 0; i < 5; i++) await first.r.accept('upload', { i });
    await until(() => seenByFirst.length === 2, 'first runner busy');
    first.r.close(); // the process is killed here: nothing was delivered

    const delivered: Notification[] = [];
    const second = runner(dir, async (n) => void delivered.push(n));
    await second.r.start();
    await until(() => new Set(delivered.map((n) => n.id)).size === 5, 'redelivery');

    const ids = new Set(delivered.map((n) => n.id));
    for (const id of seenByFirst) expect(ids.has(id)).toBe(true);
    expect(delivered.map((n) => n.record['i']).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(delivered.every((n) => n.event === 'upload')).toBe(true);
    await until(() => second.r.depth === 0, 'spool emptied');
    expect(await onDisk(dir)).toEqual([]);
  });

  it('refuses and reports (backlog-full) what arrives once maxBacklog notifications are undelivered, even in a burst', async () => {
    const dir = await tempDir();
    const { r, reports } = runner(dir, never, { maxBacklog: 3 });
    await r.start();
    await Promise.all(Array.from({ length: 5 }, (_, i) => r.accept('upload', { i })));
    expect(of(reports, 'refused')).toEqual([
      { kind: 'refused', hook: 'h', event: 'upload', reason: 'backlog-full' },
      { kind: 'refused', hook: 'h', event: 'upload', reason: 'backlog-full' },
    ]);
    expect(r.depth).toBe(3);
    expect(await onDisk(dir)).toHaveLength(3);
  });

  it('warns (backlog) once when the backlog reaches half of maxBacklog and once when it is full, and again after it drained', async () => {
    const dir = await tempDir();
    const gates: (() => void)[] = [];
    const { r, reports } = runner(dir, () => new Promise<void>((res) => gates.push(res)), { maxBacklog: 4 });
    await r.start();
    const backlog = () => of(reports, 'backlog').map((b) => [b.depth, b.max]);

    await r.accept('upload', { i: 1 });
    expect(backlog()).toEqual([]);
    await r.accept('upload', { i: 2 });
    expect(backlog()).toEqual([[2, 4]]);
    await r.accept('upload', { i: 3 });
    expect(backlog()).toEqual([[2, 4]]);
    await r.accept('upload', { i: 4 });
    expect(backlog()).toEqual([[2, 4], [4, 4]]);
    await r.accept('upload', { i: 5 }); // refused: no further warning
    expect(backlog()).toEqual([[2, 4], [4, 4]]);
    expect(of(reports, 'refused')).toHaveLength(1);

    for (let done = 1; done <= 4; done++) {
      await until(() => gates.length > 0, 'a delivery to release');
      gates.shift()!();
      await until(() => of(reports, 'delivered').length === done, 'delivery recorded');
    }
    expect(r.depth).toBe(0);
    await r.accept('upload', { i: 6 });
    await r.accept('upload', { i: 7 });
    expect(backlog()).toEqual([[2, 4], [4, 4], [2, 4]]);
  });

  it('reports a notification its spool cannot store as refused (spool-error) instead of throwing', async () => {
    const dir = await tempDir();
    const { r, reports } = runner(dir, never); // not started: its spool folder does not exist
    await expect(r.accept('upload', { i: 1 })).resolves.toBeUndefined();
    expect(of(reports, 'refused')).toEqual([{ kind: 'refused', hook: 'h', event: 'upload', reason: 'spool-error', error: 'ENOENT' }]);
  });
});
