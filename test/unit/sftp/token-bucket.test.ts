import { describe, it, expect } from 'vitest';
import { TokenBucket, capacityFor } from '../../../src/sftp/token-bucket.js';
import { Throttle, UNLIMITED, type BandwidthLimits, type Direction } from '../../../src/sftp/throttle.js';
import { ManualClock } from '../../helpers/fake-clock.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const limits = (user?: TokenBucket, server?: TokenBucket): BandwidthLimits => ({
  user: { upload: user, download: undefined },
  server: { upload: server, download: undefined },
});

/** A client with `depth` requests of `size` bytes always outstanding, as OpenSSH's sftp keeps 64. */
function greedy(throttle: Throttle, size = 32 * KiB, depth = 64, direction: Direction = 'upload') {
  const c = { bytes: 0, stopped: false };
  const next = (): void => {
    if (c.stopped) return;
    const admitted = throttle.admit(direction, size);
    if (admitted) void admitted.then(done);
    else queueMicrotask(done);
  };
  const done = (): void => {
    c.bytes += size;
    next();
  };
  for (let i = 0; i < depth; i++) next();
  return c;
}

describe('TokenBucket', () => {
  it('lets through the configured rate, measured over a simulated 10 s, within ±10 %', async () => {
    const clock = new ManualClock();
    const rate = 2 * MiB;
    const client = greedy(new Throttle(limits(new TokenBucket(rate, clock))));
    await clock.advance(10_000);
    client.stopped = true;
    expect(client.bytes / 10).toBeGreaterThanOrEqual(rate * 0.9);
    expect(client.bytes / 10).toBeLessThanOrEqual(rate * 1.1);
  });

  it('holds a slow rate too, with requests larger than the bucket', async () => {
    const clock = new ManualClock();
    const rate = 20 * KiB;
    const client = greedy(new Throttle(limits(new TokenBucket(rate, clock))), 64 * KiB, 8);
    await clock.advance(10_000);
    client.stopped = true;
    // 10 s at 20 KiB/s is 200 KiB: three 64 KiB requests and the one that went into debt.
    expect(client.bytes).toBeGreaterThanOrEqual(rate * 10 * 0.9);
    expect(client.bytes).toBeLessThanOrEqual(rate * 10 * 1.1 + 64 * KiB);
  });

  it('is shared: two sessions of one user together get the rate, about half each', async () => {
    const clock = new ManualClock();
    const rate = 1 * MiB;
    const bucket = new TokenBucket(rate, clock);
    const a = greedy(new Throttle(limits(bucket)));
    const b = greedy(new Throttle(limits(bucket)));
    await clock.advance(10_000);
    a.stopped = b.stopped = true;
    const total = a.bytes + b.bytes;
    expect(total / 10).toBeGreaterThanOrEqual(rate * 0.9);
    expect(total / 10).toBeLessThanOrEqual(rate * 1.1);
    expect(a.bytes / total).toBeGreaterThan(0.4);
    expect(b.bytes / total).toBeGreaterThan(0.4);
  });

  it('lets a request larger than the bucket through once full, and the debt delays the next one', async () => {
    const clock = new ManualClock();
    const rate = 100 * KiB;
    const bucket = new TokenBucket(rate, clock);
    expect(bucket.take(1 * MiB)).toBeUndefined();
    const next = bucket.take(1);
    expect(next).toBeDefined();
    let admitted = false;
    void next!.admitted.then(() => (admitted = true));
    // The debt is 1 MiB less the full bucket: that many bytes at 100 KiB/s.
    const debtMs = ((1 * MiB - capacityFor(rate) + 1) / rate) * 1000;
    await clock.advance(debtMs - 50);
    expect(admitted).toBe(false);
    await clock.advance(100);
    expect(admitted).toBe(true);
  });

  it('admits at once from a bucket with tokens: no ticket, no timer', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * MiB, clock);
    expect(bucket.take(32 * KiB)).toBeUndefined();
    expect(clock.pending).toBe(0);
  });

  it('serves waiters in arrival order', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(64 * KiB, clock);
    bucket.take(capacityFor(64 * KiB));
    const order: number[] = [];
    for (const n of [1, 2, 3]) void bucket.take(16 * KiB)!.admitted.then(() => order.push(n));
    await clock.advance(2000);
    expect(order).toEqual([1, 2, 3]);
  });

  it('a new rate applies to requests already waiting', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * KiB, clock);
    bucket.take(capacityFor(1 * KiB));
    let admitted = false;
    void bucket.take(32 * KiB)!.admitted.then(() => (admitted = true));
    // At 1 KiB/s it would wait 32 s; at 1 MiB/s it goes within the next few milliseconds.
    bucket.setRate(1 * MiB);
    await clock.advance(50);
    expect(admitted).toBe(true);
    expect(bucket.rate).toBe(1 * MiB);
  });

  it('a changed rate is what a simulated 10 s then measures', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * MiB, clock);
    const client = greedy(new Throttle(limits(bucket)));
    await clock.advance(10_000);
    const before = client.bytes;
    bucket.setRate(3 * MiB);
    await clock.advance(10_000);
    client.stopped = true;
    const rate = (client.bytes - before) / 10;
    expect(rate).toBeGreaterThanOrEqual(3 * MiB * 0.9);
    expect(rate).toBeLessThanOrEqual(3 * MiB * 1.1);
  });

  it('releaseAll lets every waiter go and stops its timer', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * KiB, clock);
    bucket.take(1 * MiB);
    const tickets = [bucket.take(1)!, bucket.take(1)!];
    expect(clock.pending).toBe(1);
    bucket.releaseAll();
    await Promise.all(tickets.map((t) => t.admitted));
    expect(bucket.waiting).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('reports how long each queued request waited', async () => {
    const clock = new ManualClock();
    const waits: number[] = [];
    const bucket = new TokenBucket(32 * KiB, clock, (s) => waits.push(s));
    bucket.take(capacityFor(32 * KiB));
    void bucket.take(32 * KiB);
    await clock.advance(1100);
    expect(waits).toEqual([1]);
  });
});

describe('Throttle', () => {
  it('without limits answers synchronously with nothing to wait for', () => {
    const t = new Throttle(UNLIMITED);
    expect(t.admit('upload', 1 * MiB)).toBeUndefined();
    expect(t.admit('download', 1 * MiB)).toBeUndefined();
  });

  it('a limit in one direction leaves the other unlimited', () => {
    const clock = new ManualClock();
    const t = new Throttle(limits(new TokenBucket(1, clock)));
    expect(t.admit('download', 100 * MiB)).toBeUndefined();
    expect(t.admit('download', 100 * MiB)).toBeUndefined();
  });

  it('the server-wide limit applies on top of the user limit', async () => {
    const clock = new ManualClock();
    const server = new TokenBucket(1 * MiB, clock);
    const client = greedy(new Throttle(limits(new TokenBucket(4 * MiB, clock), server)));
    await clock.advance(10_000);
    client.stopped = true;
    expect(client.bytes / 10).toBeGreaterThanOrEqual(1 * MiB * 0.9);
    expect(client.bytes / 10).toBeLessThanOrEqual(1 * MiB * 1.1);
  });

  it('a session that ends lets its waiting requests go, and only its own', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * KiB, clock);
    bucket.take(1 * MiB);
    const ending = new Throttle(limits(bucket));
    const other = new Throttle(limits(bucket));
    const mine = [ending.admit('upload', 10)!, ending.admit('upload', 10)!];
    let othersDone = false;
    void other.admit('upload', 10)!.then(() => (othersDone = true));
    ending.end();
    await Promise.all(mine);
    await clock.advance(0);
    expect(othersDone).toBe(false);
    expect(bucket.waiting).toBe(1);
    // After the end nothing waits: requests still arriving go straight through.
    expect(ending.admit('upload', 1 * MiB)).toBeUndefined();
  });
});
