/**
 * A bandwidth limit split among the instances that move bytes under it (config "shared"): the
 * registry's share ticks against a store that counts active instances per limit, here an in-memory
 * one (the Redis script behind it is exercised by test/integration/shared-store.test.ts).
 */
import { afterEach, describe, it, expect, vi } from 'vitest';
import { validateConfig, type ServerConfig } from '../../../src/config/load.js';
import { BandwidthRegistry, type ActivityStore } from '../../../src/server/bandwidth.js';
import { ManualClock } from '../../helpers/fake-clock.js';

const MiB = 1024 * 1024;
const config = (): ServerConfig =>
  validateConfig({ users: [{ username: 'a', password: 'p', root: '/tmp/a', bandwidth: { uploadBytesPerSecond: 4 * MiB } }] }, { baseDir: '/', checkFiles: false });

/** Instances active under each limit during the current tick. */
class FakeStore {
  readonly active = new Map<string, Set<string>>();
  as(instance: string): ActivityStore {
    return {
      activeInstances: async (names) =>
        names.map((n) => {
          const set = this.active.get(n) ?? this.active.set(n, new Set()).get(n)!;
          set.add(instance);
          return set.size;
        }),
    };
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('bandwidth shared among instances', () => {
  it('two instances moving a user\'s bytes each run at half the limit; one alone keeps all of it', async () => {
    vi.useFakeTimers();
    const store = new FakeStore();
    const [one, two] = [new BandwidthRegistry(config(), { clock: new ManualClock() }), new BandwidthRegistry(config(), { clock: new ManualClock() })];
    one.shareThrough(store.as('one'));
    two.shareThrough(store.as('two'));
    const [b1, b2] = [one.forUser('a').user.upload!, two.forUser('a').user.upload!];
    b1.take(1000);
    await vi.advanceTimersByTimeAsync(500);
    expect(b1.rate).toBe(4 * MiB);
    // Both move bytes: within two ticks (one for each to see the other) each has half.
    for (let tick = 0; tick < 2; tick++) {
      b1.take(1000);
      b2.take(1000);
      await vi.advanceTimersByTimeAsync(500);
    }
    expect([b1.rate, b2.rate]).toEqual([2 * MiB, 2 * MiB]);
    one.stopSharing();
    two.stopSharing();
  });

  it('an unreachable store leaves each instance at the full limit, as one alone', async () => {
    vi.useFakeTimers();
    const r = new BandwidthRegistry(config(), { clock: new ManualClock() });
    r.shareThrough({ activeInstances: () => Promise.reject(new Error('offline')) });
    const b = r.forUser('a').user.upload!;
    b.take(1000);
    await vi.advanceTimersByTimeAsync(500);
    expect(b.rate).toBe(4 * MiB);
    r.stopSharing();
  });

  it('a reload keeps the split: the new limit is divided among the same instances', async () => {
    vi.useFakeTimers();
    const store = new FakeStore();
    const r = new BandwidthRegistry(config(), { clock: new ManualClock() });
    r.shareThrough(store.as('one'));
    store.active.set('user:a:upload', new Set(['other']));
    const b = r.forUser('a').user.upload!;
    b.take(1000);
    await vi.advanceTimersByTimeAsync(500);
    expect(b.rate).toBe(2 * MiB);
    r.reload(validateConfig({ users: [{ username: 'a', password: 'p', root: '/tmp/a', bandwidth: { uploadBytesPerSecond: 8 * MiB } }] }, { baseDir: '/', checkFiles: false }));
    expect(b.rate).toBe(4 * MiB);
    r.stopSharing();
  });
});
