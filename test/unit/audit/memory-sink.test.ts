import { describe, it, expect } from 'vitest';
import { SAMPLES, fanout } from './samples.js';

describe('EventLog (the test double event log)', () => {
  it('waitFor resolves with an event that already happened and rejects after its timeout', async () => {
    const { audit, mem } = fanout();
    audit.emit(SAMPLES[0]!);
    await expect(mem.waitFor('auth.success', { timeout: 10 })).resolves.toMatchObject({ user: 'alice' });
    await expect(mem.waitFor('transfer', { timeout: 10 })).rejects.toThrow(/no "transfer" event within 10 ms/);
  });

  it('is an array of records and an async iterable that also yields later events', async () => {
    const { audit, mem } = fanout();
    audit.emit(SAMPLES[0]!);
    expect(mem.length).toBe(1);
    expect(mem.filter((e) => e.event === 'auth.success')).toHaveLength(1);
    expect(Array.isArray(mem.map((e) => e.event))).toBe(true);
    const seen: string[] = [];
    const reader = (async () => {
      for await (const e of mem) {
        seen.push(e.event);
        if (seen.length === 3) break;
      }
    })();
    audit.emit(SAMPLES[4]!);
    audit.emit(SAMPLES[5]!);
    await reader;
    expect(seen).toEqual(['auth.success', 'session.open', 'session.close']);
  });
});
