/**
 * The test double's event log (src/audit/memory-sink.ts) as a test author uses it: waitFor and
 * ofType typed by event name, a default timeout under the runners' own, errors that say what was
 * seen, and an end (close) that pending and later waits learn about at once.
 */
import { describe, it, expect, expectTypeOf, vi, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventLog, DEFAULT_WAIT_FOR_TIMEOUT_MS, type AuditRecordOf } from '../../../src/audit/memory-sink.js';
import type { AuditEvent, AuditRecord } from '../../../src/audit/events.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const stamp = { time: '2024-01-01T00:00:00.000Z', level: 'info', server: 'test' };
const core = { user: 'alice', sessionId: 's1', remote: '127.0.0.1:1' };
const rec = (e: AuditEvent) => ({ ...stamp, ...e }) as AuditRecord;
const transfer = (path: string) =>
  rec({
    event: 'transfer', ...core, path, flags: 'READ', direction: 'download', bytesRead: 4, bytesWritten: 0,
    firstOffset: 0, highestOffset: 4, startSize: 4, requests: 1, maxRequestBytes: 4, durationMs: 1, status: 'complete',
  });
const login = rec({ event: 'auth.success', ...core, method: 'password' });

/** Settles within this turn of the event loop, or is still pending (no clocks involved). */
async function settledNow(p: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  let state: 'resolved' | 'rejected' | 'pending' = 'pending';
  p.then(() => (state = 'resolved'), () => (state = 'rejected'));
  await new Promise((r) => setImmediate(r));
  return state;
}

afterEach(() => {
  vi.useRealTimers();
});

/**
 * The type contract, checked by `tsc --noEmit -p .` and by the last test of this file (which runs
 * tsc on this file). Never called: only its types matter.
 */
async function typeContract(log: EventLog): Promise<void> {
  const t = await log.waitFor('transfer');
  expectTypeOf(t).toEqualTypeOf<AuditRecordOf<'transfer'>>();
  expectTypeOf(t.path).toBeString();
  expectTypeOf(t.status).toEqualTypeOf<'complete' | 'incomplete' | 'error'>();
  // The optional predicate is typed by the name too, and so is the result.
  const up = await log.waitFor('transfer', (r) => r.direction === 'upload' && r.bytesWritten > 0, { timeout: 10 });
  expectTypeOf(up.bytesWritten).toBeNumber();
  expectTypeOf(log.ofType('transfer')[0]!.path).toBeString();
  expectTypeOf(log.ofType('rename', (r) => r.from === '/a')).toEqualTypeOf<AuditRecordOf<'rename'>[]>();
  // Server events share one interface whose `event` is a union: still a record, not never.
  expectTypeOf((await log.waitFor('server.start')).message).toBeString();
  // A union of names gives a union of records.
  const dir = await log.waitFor<'mkdir' | 'rmdir'>('mkdir');
  expectTypeOf(dir.event).toEqualTypeOf<'mkdir' | 'rmdir'>();
  expectTypeOf(dir.path).toBeString();
  // A type guard narrows (TypeScript ≥ 5.5 infers one from `r.event === 'copy'`); other predicates give any record.
  expectTypeOf(await log.waitFor((r): r is AuditRecordOf<'copy'> => r.event === 'copy')).toEqualTypeOf<AuditRecordOf<'copy'>>();
  expectTypeOf((await log.waitFor((r) => r.event === 'copy')).bytes).toBeNumber();
  expectTypeOf(await log.waitFor((r) => r.level === 'warn')).toEqualTypeOf<AuditRecord>();
  // @ts-expect-error auth.success has no path
  void (await log.waitFor('auth.success')).path;
  // @ts-expect-error not an event name
  void log.waitFor('transfers');
  // @ts-expect-error the predicate gets a transfer, which has no `from`
  void log.waitFor('transfer', (r) => r.from === '/a');
}
void typeContract;

describe('waitFor and ofType', () => {
  it('waitFor(name) resolves with the record of that name, past or future', async () => {
    const log = new EventLog();
    log.write(login);
    await expect(log.waitFor('auth.success')).resolves.toBe(login);
    const later = log.waitFor('transfer');
    const t = transfer('/in/a.csv');
    log.write(t);
    await expect(later).resolves.toBe(t);
  });

  it('waitFor(name, predicate) resolves with the first record of that name the predicate accepts', async () => {
    const log = new EventLog();
    log.write(transfer('/a'));
    const waiting = log.waitFor('transfer', (r) => r.path === '/b');
    expect(await settledNow(waiting)).toBe('pending');
    const b = transfer('/b');
    log.write(login);
    log.write(b);
    await expect(waiting).resolves.toBe(b);
    expect(log.ofType('transfer', (r) => r.path === '/a').map((r) => r.path)).toEqual(['/a']);
  });

  it('the typing holds under tsc, and a misuse of it is a type error', async () => {
    // typeContract above is checked by the project's typecheck; this probe makes the run itself fail.
    const dir = await mkdtemp(join(tmpdir(), 'events-types-'));
    try {
      const probe = join(dir, 'probe.mts'); // .mts: an ES module without a package.json
      await writeFile(probe, PROBE.replace('MEMORY_SINK', JSON.stringify(join(repo, 'src/audit/memory-sink.js'))));
      await writeFile(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          extends: join(repo, 'tsconfig.json'),
          compilerOptions: { rootDir: '/', typeRoots: [join(repo, 'node_modules/@types')], noEmit: true },
          files: [probe],
        }),
      );
      const r = await tsc(['--noEmit', '-p', join(dir, 'tsconfig.json'), '--pretty', 'false']);
      // Exactly the one deliberate error: every other line (and each @ts-expect-error) holds.
      const errors = r.out.split('\n').filter((l) => /error TS\d+/.test(l));
      expect(errors, r.out).toHaveLength(1);
      expect(errors[0]).toMatch(/probe\.mts\(\d+,\d+\): error TS2339: Property 'path' does not exist on type .*auth\.success/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** Uses of the typed API that must compile, misuses that must not, and one deliberate error. */
const PROBE = `import type { EventLog } from MEMORY_SINK;
export async function uses(log: EventLog): Promise<void> {
  const path: string = (await log.waitFor('transfer')).path;
  const up: number = (await log.waitFor('transfer', (t) => t.direction === 'upload', { timeout: 10 })).bytesWritten;
  const listed: string[] = log.ofType('rename', (r) => r.overwrite).map((r) => r.from);
  const message: string = (await log.waitFor('server.start')).message;
  const copied: number = (await log.waitFor((r) => r.event === 'copy')).bytes;
  // @ts-expect-error not an event name
  void log.waitFor('transfers');
  // @ts-expect-error the predicate gets a transfer, which has no \`from\`
  void log.waitFor('transfer', (t) => t.from === '/a');
  // @ts-expect-error a record of one type is not any record
  const wrong: number = (await log.waitFor('mkdir')).bytes;
  void [path, up, listed, message, copied, wrong];
}
export async function deliberate(log: EventLog): Promise<unknown> {
  return (await log.waitFor('auth.success')).path;
}
`;

function tsc(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(repo, 'node_modules/.bin/tsc'), args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (e) => resolve({ code: -1, out: String(e) }));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('timeouts', () => {
  it(`the default timeout is ${DEFAULT_WAIT_FOR_TIMEOUT_MS} ms, below the runners' own (jest and vitest 5 s, mocha 2 s)`, async () => {
    expect(DEFAULT_WAIT_FOR_TIMEOUT_MS).toBeLessThan(2000);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const log = new EventLog();
    const waiting = log.waitFor('transfer');
    waiting.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(DEFAULT_WAIT_FOR_TIMEOUT_MS - 1);
    expect(await settledNow(waiting)).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await expect(waiting).rejects.toThrow(`no "transfer" event within ${DEFAULT_WAIT_FOR_TIMEOUT_MS} ms; saw: none`);
  });

  it('a per-call timeout wins over the log-wide default, which wins over the built-in one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const log = new EventLog({ waitForTimeoutMs: 300 });
    const byDefault = log.waitFor('transfer');
    const perCall = log.waitFor('transfer', { timeout: 100 });
    const withPredicate = log.waitFor('transfer', () => true, { timeout: 200 });
    for (const p of [byDefault, perCall, withPredicate]) p.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(300);
    await expect(perCall).rejects.toThrow('within 100 ms');
    await expect(withPredicate).rejects.toThrow('within 200 ms');
    await expect(byDefault).rejects.toThrow('within 300 ms');
  });

  it('a timeout that is not a number of milliseconds is a TypeError naming the option', async () => {
    expect(() => new EventLog({ waitForTimeoutMs: -1 })).toThrow(/waitForTimeoutMs must be a number of milliseconds/);
    await expect(new EventLog().waitFor('transfer', { timeout: Number.NaN })).rejects.toThrow(TypeError);
  });

  it('the timeout error lists the events seen, short: the last ten, with their paths, long paths cut', async () => {
    const log = new EventLog();
    log.write(login);
    log.write(transfer('/in/a.csv'));
    await expect(log.waitFor('rename', { timeout: 1 })).rejects.toThrow('no "rename" event within 1 ms; saw: auth.success, transfer /in/a.csv');
    await expect(log.waitFor((r) => r.event === 'copy', { timeout: 1 })).rejects.toThrow(/^no matching event within 1 ms; saw: /);

    for (let i = 0; i < 30; i++) log.write(transfer(`/${i}/${'x'.repeat(100)}`));
    const err = (await log.waitFor('rename', { timeout: 1 }).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/saw: … 22 earlier, transfer \/20\/x+…, /);
    expect(err.message).toContain('transfer /29/');
    expect(err.message.length).toBeLessThan(600);
  });
});

describe('close', () => {
  it('a pending waitFor rejects as soon as the log closes, with the reason and what it saw', async () => {
    const log = new EventLog();
    log.write(login);
    const waiting = log.waitFor('transfer', { timeout: 60_000 });
    const withPredicate = log.waitFor((r) => r.event === 'copy', { timeout: 60_000 });
    withPredicate.catch(() => undefined); // checked below, after the next turn
    await log.close('test server closed');
    expect(await settledNow(waiting)).toBe('rejected');
    await expect(waiting).rejects.toThrow('test server closed; saw: auth.success');
    await expect(withPredicate).rejects.toThrow('test server closed; saw: auth.success');
  });

  it('waitFor after close rejects at once, unless the event already happened', async () => {
    const log = new EventLog();
    log.write(login);
    await log.close('test server closed');
    const late = log.waitFor('transfer', { timeout: 60_000 });
    expect(await settledNow(late)).toBe('rejected');
    await expect(late).rejects.toThrow('test server closed; saw: auth.success');
    await expect(log.waitFor('auth.success')).resolves.toBe(login);
  });

  it('the first reason given is kept (the audit fan-out closes its sinks again later)', async () => {
    const log = new EventLog();
    await log.close('test server closed');
    await log.close();
    await expect(log.waitFor('transfer')).rejects.toThrow(/^test server closed; saw: none$/);
  });
});
