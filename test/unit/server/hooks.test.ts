import { afterEach, describe, expect, it } from 'vitest';
import { Audit, type AuditRecord } from '../../../src/audit/events.js';
import { validateConfig, type ServerConfig } from '../../../src/config/load.js';
import { ServerHooks } from '../../../src/server/hooks.js';
import type { Deliver } from '../../../src/hooks/deliver.js';
import { rec, tempDir, until, upload } from '../hooks/helpers.js';

const running: ServerHooks[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((h) => h.close()));
});

function config(spoolDir: string, hooks: Record<string, unknown>[]): ServerConfig {
  return validateConfig({ users: [{ username: 'alice', password: 'p', root: '/r', group: 'finance' }], groups: { finance: {} }, hooks, spoolDir }, { baseDir: '/', checkFiles: false });
}

async function started(cfg: ServerConfig, deliver: Deliver) {
  const audit = new Audit('t');
  const logged: AuditRecord[] = [];
  audit.addSink({ write: (r) => void logged.push(r) });
  const hooks = new ServerHooks(cfg, { audit, metrics: undefined, deliver: () => deliver, retryBaseMs: 1 });
  running.push(hooks);
  audit.addSink(hooks);
  await hooks.start(cfg);
  return { audit, hooks, logged, failed: () => logged.filter((r) => r.event === 'hook.failed').map((r) => (r as { attempt: number }).attempt) };
}

describe('ServerHooks', () => {
  it('logs a failing notification at attempts 1, 2, 4, 8 only, and a reload that keeps the hooks keeps its retries going', async () => {
    const dir = await tempDir();
    const cfg = config(dir, [{ name: 'web', events: ['upload'], command: { argv: ['/bin/true'] }, retryMaxSeconds: 0.005 }]);
    let calls = 0;
    const { audit, hooks, failed } = await started(cfg, async () => {
      calls++;
      throw new Error('down');
    });
    audit.emit(upload('/a.csv'));
    await until(() => calls >= 12, 'twelve attempts');
    await hooks.reload(config(dir, [{ name: 'web', events: ['upload'], command: { argv: ['/bin/true'] }, retryMaxSeconds: 0.005 }]));
    const before = calls;
    await until(() => calls >= before + 8, 'eight more attempts');
    // Kept, not replaced: the attempts count on (a new sink would log 1, 2, 4, 8 again).
    expect(failed().slice(0, 5)).toEqual([1, 2, 4, 8, 16]);
  });

  it('a reload that changes the hooks hands the backlog and the records written meanwhile to the new ones', async () => {
    const dir = await tempDir();
    const got: string[] = [];
    let up = false;
    const { audit, hooks, failed } = await started(config(dir, [{ name: 'web', events: ['upload'], command: { argv: ['/bin/true'] } }]), async (n) => {
      if (!up) throw new Error('down');
      got.push(String(n.record['path']));
    });
    audit.emit(upload('/before.csv'));
    await until(() => failed().length > 0, 'stored and failed once');
    up = true;
    const reloading = hooks.reload(config(dir, [{ name: 'web', events: ['upload', 'login'], groups: ['finance'], command: { argv: ['/bin/true'] } }]));
    audit.emit(upload('/during.csv'));
    await reloading;
    audit.emit(rec({ event: 'auth.success', user: 'alice', sessionId: 's', remote: '127.0.0.1:1', method: 'password' }));
    await until(() => got.length >= 3, 'three deliveries');
    expect(got.sort()).toEqual(['/before.csv', '/during.csv', 'undefined']);
  });
});
