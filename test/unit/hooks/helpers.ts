/** Shared by the hooks unit tests: temporary directories removed after each test, configs, records. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { AuditEvent, AuditRecord } from '../../../src/audit/events.js';
import { hookSchema, type HookConfig } from '../../../src/hooks/config.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A fresh directory, removed after the current test. */
export async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sftp-chroot-hooks-'));
  dirs.push(d);
  return d;
}

/** A hook config with the schema's defaults filled in (a command hook unless `http` is given). */
export function hook(over: Record<string, unknown> = {}): HookConfig {
  const base: Record<string, unknown> = { name: 'h', events: ['upload'] };
  if (over['http'] === undefined && over['command'] === undefined) base['command'] = { argv: ['/bin/true'] };
  return hookSchema.parse({ ...base, ...over });
}

export const core = { user: 'alice', sessionId: 's1', remote: '127.0.0.1:50000' };

/** An audit record as a sink receives it. */
export function rec(e: AuditEvent): AuditRecord {
  return { time: '2024-01-01T00:00:00.000Z', level: 'info', server: 'test', ...e } as AuditRecord;
}

export function upload(path: string, over: Partial<Extract<AuditEvent, { event: 'transfer' }>> = {}): AuditRecord {
  return rec({
    event: 'transfer', ...core, path, flags: 'WRITE|CREAT|TRUNC', direction: 'upload', bytesRead: 0, bytesWritten: 3,
    firstOffset: 0, highestOffset: 3, startSize: 0, requests: 1, maxRequestBytes: 3, durationMs: 1, status: 'complete', ...over,
  });
}

/** Resolves once `cond()` holds, checking every few ms; a generous bound turns a hang into a failure. */
export async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 2000) throw new Error(`${what}: not reached`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
