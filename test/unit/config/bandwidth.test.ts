import { describe, it, expect } from 'vitest';
import { parseRate } from '../../../src/config/bandwidth.js';
import { validateConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

const config = (raw: Record<string, unknown>) => validateConfig({ users: [{ username: 'u', password: 'p', root: '/tmp' }], ...raw }, { baseDir: '/', checkFiles: false });

describe('parseRate', () => {
  it.each([
    ['800000', 800_000],
    ['500KB', 500_000],
    ['10MiB', 10 * 1024 * 1024],
    ['1.5 MB/s', 1_500_000],
    ['2gib', 2 * 1024 ** 3],
    ['64KiB', 65_536],
  ])('reads %s as %d bytes per second', (text, bytes) => {
    expect(parseRate(text)).toBe(bytes);
  });

  it.each(['', '0', '0KB', '-1MB', '10 megabytes', 'MiB', '1e6'])('refuses %j', (text) => {
    expect(parseRate(text)).toBeUndefined();
  });
});

describe('bandwidth settings', () => {
  it('a user takes the group’s limits unless they have their own', () => {
    const c = validateConfig(
      {
        groups: { partners: { root: '/tmp/%u', bandwidth: { uploadBytesPerSecond: '1MiB', downloadBytesPerSecond: 2_000_000 } } },
        users: [
          { username: 'a', password: 'p', group: 'partners' },
          { username: 'b', password: 'p', group: 'partners', bandwidth: { downloadBytesPerSecond: '500KB' } },
          { username: 'c', password: 'p', root: '/tmp/c' },
        ],
      },
      { baseDir: '/', checkFiles: false },
    );
    expect(c.users[0]!.bandwidth).toEqual({ uploadBytesPerSecond: 1024 * 1024, downloadBytesPerSecond: 2_000_000 });
    expect(c.users[1]!.bandwidth).toEqual({ downloadBytesPerSecond: 500_000 });
    expect(c.users[2]!.bandwidth).toBeUndefined();
  });

  it('limits.bandwidth is the server-wide limit; absent, there is none', () => {
    expect(config({ limits: { bandwidth: { uploadBytesPerSecond: '10MiB' } } }).limits.bandwidth).toEqual({ uploadBytesPerSecond: 10 * 1024 * 1024 });
    expect(config({}).limits.bandwidth).toBeUndefined();
  });

  it('a rate that is not a positive size is an error naming its path', () => {
    let issues: readonly { path: string; message: string }[] = [];
    try {
      config({ limits: { bandwidth: { uploadBytesPerSecond: 0, downloadBytesPerSecond: 'fast' } } });
    } catch (e) {
      if (e instanceof ConfigError) issues = e.issues;
    }
    expect(issues.map((i) => i.path).sort()).toEqual(['limits.bandwidth.downloadBytesPerSecond', 'limits.bandwidth.uploadBytesPerSecond']);
    expect(issues.find((i) => i.path.endsWith('downloadBytesPerSecond'))!.message).toMatch(/"10MiB"/);
  });
});
