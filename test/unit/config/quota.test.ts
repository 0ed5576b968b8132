import { describe, it, expect } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

const opts = { baseDir: '/', checkFiles: false };

describe('quota settings', () => {
  it('a user takes the group’s quota unless they have their own, and has none without either', () => {
    const c = validateConfig(
      {
        groups: { partners: { root: '/tmp/%u', quota: { bytes: 1_000_000, files: 100 } } },
        users: [
          { username: 'a', password: 'p', group: 'partners' },
          { username: 'b', password: 'p', group: 'partners', quota: { files: 5 } },
          { username: 'c', password: 'p', root: '/tmp/c' },
        ],
      },
      opts,
    );
    expect(c.users.map((u) => u.quota)).toEqual([{ bytes: 1_000_000, files: 100 }, { files: 5 }, undefined]);
  });

  it('refuses limits that are not positive integers and unknown fields, naming each', () => {
    const quota = { bytes: 0, files: 1.5, blocks: 3 };
    let e: unknown;
    try {
      validateConfig({ users: [{ username: 'u', password: 'p', root: '/tmp', quota }] }, opts);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).issues.map((i) => i.path).sort()).toEqual(['users[0].quota', 'users[0].quota.bytes', 'users[0].quota.files']);
  });
});
