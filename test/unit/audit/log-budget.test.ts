import { describe, it, expect } from 'vitest';
import { LogBudget } from '../../../src/audit/log-budget.js';

describe('LogBudget: per-connection budget for warning records', () => {
  it('passes a whole burst, then refuses and counts what it refuses', () => {
    const b = new LogBudget(3, 2, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false, false]);
    expect(b.suppressed).toBe(2);
  });

  it('refills at its rate and never beyond the burst', () => {
    const b = new LogBudget(3, 2, 0);
    for (let i = 0; i < 3; i++) b.take(0);
    expect(b.take(400)).toBe(false); // 0.8 of a record earned
    expect(b.take(500)).toBe(true); // 1.0
    expect(b.take(500)).toBe(false);
    // A long quiet spell earns the burst back, not more.
    expect([b.take(60_000), b.take(60_000), b.take(60_000), b.take(60_000)]).toEqual([true, true, true, false]);
    expect(b.suppressed).toBe(3);
  });
});
