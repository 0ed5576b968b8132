import { describe, it, expect } from 'vitest';
import { SharedCounter, type UsageStore } from '../../../src/shared/shared-counter.js';
import type { SharedUsage } from '../../../src/shared/redis-store.js';

/** A store in memory; `others` adds what other instances changed; `down` makes every call fail. */
class FakeStore implements UsageStore {
  total = { bytes: 0, files: 0 };
  calls = 0;
  down = false;
  async usage(): Promise<SharedUsage | undefined> {
    this.calls++;
    if (this.down) throw new Error('offline');
    return { ...this.total, counted: true };
  }
  async addUsage(_root: string, bytes: number, files: number): Promise<SharedUsage> {
    this.calls++;
    if (this.down) throw new Error('offline');
    this.total = { bytes: this.total.bytes + bytes, files: this.total.files + files };
    return { ...this.total, counted: true };
  }
}

describe('SharedCounter', () => {
  it('counts a change at once, and changes made while a batch is in flight go in the next one', async () => {
    const store = new FakeStore();
    const c = new SharedCounter(store, '/r', undefined, 60_000);
    c.add(10, 1);
    c.add(5, 0);
    expect(c.get()).toEqual({ bytes: 15, files: 1 });
    await c.sync();
    expect(store.total).toEqual({ bytes: 15, files: 1 });
    expect(c.get()).toEqual({ bytes: 15, files: 1 });
  });

  it("sync brings the other instances' changes", async () => {
    const store = new FakeStore();
    const c = new SharedCounter(store, '/r', undefined, 60_000);
    store.total = { bytes: 700, files: 3 };
    await c.sync();
    expect(c.get()).toEqual({ bytes: 700, files: 3 });
  });

  it('a root nobody reads costs the store nothing; a stale count is fetched when read', async () => {
    const store = new FakeStore();
    const c = new SharedCounter(store, '/r', undefined, 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(store.calls).toBe(0);
    store.total = { bytes: 9, files: 1 };
    c.get();
    await new Promise((r) => setTimeout(r, 5));
    expect(c.get()).toEqual({ bytes: 9, files: 1 });
  });

  it('changes made while the store is unreachable are kept and sent when it answers again', async () => {
    const store = new FakeStore();
    const c = new SharedCounter(store, '/r', undefined, 60_000);
    store.down = true;
    c.add(100, 1);
    await c.sync();
    expect(c.get()).toEqual({ bytes: 100, files: 1 });
    store.down = false;
    await c.sync();
    expect(store.total).toEqual({ bytes: 100, files: 1 });
    expect(c.get()).toEqual({ bytes: 100, files: 1 });
  });
});
