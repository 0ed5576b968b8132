import { describe, it, expect } from 'vitest';
import { accountRefusal } from '../../../src/ssh/account.js';
import { validateConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { tmpdir } from 'node:os';

const user = (extra: Record<string, unknown>) => ({ username: 'u', password: 'p', root: tmpdir(), ...extra });
const load = (users: unknown[], groups: Record<string, unknown> = {}) => validateConfig({ users, groups }, { baseDir: tmpdir() });
function issues(users: unknown[]): string[] {
  try {
    load(users);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

describe('account lifecycle', () => {
  it('an enabled account without expiry may log in', () => {
    expect(accountRefusal({ disabled: false })).toBeUndefined();
  });

  it('a disabled account is refused whatever its expiry', () => {
    expect(accountRefusal({ disabled: true, expiresAt: Date.now() + 3600_000 })).toBe('account-disabled');
  });

  it('an account is refused from the millisecond expiresAt names, not before', () => {
    expect(accountRefusal({ disabled: false, expiresAt: 1000 }, 999)).toBeUndefined();
    expect(accountRefusal({ disabled: false, expiresAt: 1000 }, 1000)).toBe('account-expired');
  });

  it('expiresAt takes a date (00:00 UTC) or a date-time with its zone', () => {
    const [a, b, c] = load([user({ username: 'a', expiresAt: '2027-01-31' }), user({ username: 'b', expiresAt: '2027-01-31T18:00:00+01:00' }), user({ username: 'c' })]).users;
    expect(a!.expiresAt).toBe(Date.UTC(2027, 0, 31));
    expect(b!.expiresAt).toBe(Date.UTC(2027, 0, 31, 17));
    expect(c!.expiresAt).toBeUndefined();
  });

  it('a config names a bad expiresAt: no zone, not a date, a day the calendar lacks', () => {
    expect(issues([user({ expiresAt: '2027-01-31T18:00:00' })])).toEqual([expect.stringMatching(/^users\[0\]\.expiresAt: expected a date "2027-01-31"/)]);
    expect(issues([user({ expiresAt: 'next week' })])).toEqual([expect.stringMatching(/^users\[0\]\.expiresAt: expected a date/)]);
    expect(issues([user({ expiresAt: '2027-02-30' })])).toEqual(['users[0].expiresAt: "2027-02-30" is not a real date']);
  });

  it('disabled is inherited from the group and a user may override it', () => {
    const [a, b] = load([user({ username: 'a', group: 'g' }), user({ username: 'b', group: 'g', disabled: false })], { g: { disabled: true } }).users;
    expect([a!.disabled, b!.disabled]).toEqual([true, false]);
  });
});
