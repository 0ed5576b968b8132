import { afterEach, describe, expect, it } from 'vitest';
import type { Deliver } from '../../../src/hooks/deliver.js';
import type { HookReport } from '../../../src/hooks/runner.js';
import { HooksSink } from '../../../src/hooks/sink.js';
import type { Notification } from '../../../src/hooks/spool.js';
import { core, hook, rec, tempDir, until, upload } from './helpers.js';

const sinks: HooksSink[] = [];
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
});

const groups: Record<string, string> = { alice: 'finance', bob: 'ops' };

function sink(spoolDir: string, hooks: Record<string, unknown>[], deliver: (hook: string) => Deliver) {
  const reports: HookReport[] = [];
  const s = new HooksSink({ hooks: hooks.map((h) => hook(h)), spoolDir, groupOf: (u) => groups[u], report: (r) => reports.push(r), deliver: (h) => deliver(h.name), retryBaseMs: 20 });
  sinks.push(s);
  return { s, reports };
}

const never: Deliver = () => new Promise<void>(() => undefined);

describe('HooksSink', () => {
  it('hands each record to exactly the hooks that want it (by event, user, group via groupOf and path glob)', async () => {
    const dir = await tempDir();
    const got: { hook: string; event: string; path: unknown; user: unknown }[] = [];
    const { s } = sink(
      dir,
      [
        { name: 'inbox', events: ['upload'], paths: ['/in/**'] },
        { name: 'finance', events: ['upload', 'download'], groups: ['finance'] },
        { name: 'bob-logins', events: ['login'], users: ['bob'] },
        { name: 'csv', events: ['upload'], paths: ['*.csv'] },
      ],
      (hook) => async (n: Notification) => void got.push({ hook, event: n.event, path: n.record['path'], user: n.record['user'] }),
    );
    await s.start();

    s.write(upload('/in/a.bin')); // alice (finance): inbox, finance
    s.write(upload('/out/b.csv', { user: 'bob' })); // bob (ops): csv
    s.write(upload('/out/c.bin', { direction: 'download', status: 'complete' })); // alice: finance
    s.write(upload('/in/d.csv', { user: 'carol' })); // carol (no group): inbox, csv
    s.write(upload('/in/e.csv', { status: 'incomplete' })); // upload-failed: nobody
    s.write(rec({ event: 'auth.success', ...core, method: 'password' })); // alice's login: nobody
    s.write(rec({ event: 'auth.success', ...core, user: 'bob', method: 'publickey' })); // bob-logins
    s.write(rec({ event: 'remove', ...core, path: '/in/a.bin', ok: true })); // remove: nobody
    s.write(rec({ event: 'session.open', ...core, client: 'SSH-2.0-x' })); // no hook event
    await until(() => got.length >= 7, 'seven deliveries');
    await s.close(); // every notification is stored by now: one no hook should have had would be pending or delivered
    expect(s.runners.map((r) => r.depth)).toEqual([0, 0, 0, 0]);

    const key = (x: (typeof got)[number]) => `${x.hook} ${x.event} ${String(x.user)} ${String(x.path)}`;
    expect(got.map(key).sort()).toEqual(
      [
        'inbox upload alice /in/a.bin',
        'finance upload alice /in/a.bin',
        'csv upload bob /out/b.csv',
        'finance download alice /out/c.bin',
        'inbox upload carol /in/d.csv',
        'csv upload carol /in/d.csv',
        'bob-logins login bob undefined',
      ].sort(),
    );
  });

  it('close() waits until every record written has been stored, so a new sink on the same spool delivers them all', async () => {
    const dir = await tempDir();
    const hooks = [{ name: 'a', events: ['upload'] }, { name: 'b', events: ['upload'], paths: ['*.csv'] }];
    const first = sink(dir, hooks, () => never);
    await first.s.start();
    for (let i = 0; i < 40; i++) first.s.write(upload(`/in/${i}.${i % 2 ? 'csv' : 'bin'}`));
    await first.s.close(); // SIGTERM: then the process exits

    expect(first.reports.filter((r) => r.kind === 'refused')).toEqual([]);
    const got = new Map<string, Set<unknown>>([['a', new Set()], ['b', new Set()]]);
    const second = sink(dir, hooks, (hook) => async (n) => void got.get(hook)!.add(n.record['path']));
    await second.s.start();
    await until(() => got.get('a')!.size === 40 && got.get('b')!.size === 20, 'every stored notification delivered');
    expect([...got.get('b')!].every((p) => String(p).endsWith('.csv'))).toBe(true);
    expect(second.reports.filter((r) => r.kind === 'refused')).toEqual([]);
  });
});
