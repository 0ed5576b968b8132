import { describe, it, expect } from 'vitest';
import { validateConfig, type ServerConfig } from '../../../src/config/load.js';
import { BandwidthRegistry } from '../../../src/server/bandwidth.js';
import { ManualClock } from '../../helpers/fake-clock.js';

const MiB = 1024 * 1024;

function config(users: { username: string; bandwidth?: object }[], server?: object): ServerConfig {
  return validateConfig(
    { users: users.map((u) => ({ password: 'p', root: `/tmp/${u.username}`, ...u })), ...(server ? { limits: { bandwidth: server } } : {}) },
    { baseDir: '/', checkFiles: false },
  );
}

describe('BandwidthRegistry', () => {
  it('gives every session of a user the same buckets, and other users their own', () => {
    const r = new BandwidthRegistry(config([{ username: 'a', bandwidth: { uploadBytesPerSecond: MiB } }, { username: 'b', bandwidth: { uploadBytesPerSecond: MiB } }]), { clock: new ManualClock() });
    expect(r.forUser('a').user.upload).toBe(r.forUser('a').user.upload);
    expect(r.forUser('a').user.upload).not.toBe(r.forUser('b').user.upload);
    expect(r.forUser('a').server).toBe(r.forUser('b').server);
  });

  it('users without a limit get no bucket (nothing to wait on)', () => {
    const r = new BandwidthRegistry(config([{ username: 'a' }]), { clock: new ManualClock() });
    expect(r.forUser('a').user).toEqual({ upload: undefined, download: undefined });
    expect(r.forUser('a').server).toEqual({ upload: undefined, download: undefined });
  });

  it('reload changes the rate of the bucket running sessions hold', () => {
    const r = new BandwidthRegistry(config([{ username: 'a', bandwidth: { downloadBytesPerSecond: MiB } }], { uploadBytesPerSecond: 8 * MiB }), { clock: new ManualClock() });
    const held = r.forUser('a');
    const bucket = held.user.download!;
    r.reload(config([{ username: 'a', bandwidth: { downloadBytesPerSecond: 3 * MiB } }], { uploadBytesPerSecond: 4 * MiB }));
    expect(held.user.download).toBe(bucket);
    expect(bucket.rate).toBe(3 * MiB);
    expect(held.server.upload!.rate).toBe(4 * MiB);
  });

  it('a limit lifted on reload lets its waiting requests go; one added applies to running sessions', async () => {
    const clock = new ManualClock();
    const r = new BandwidthRegistry(config([{ username: 'a', bandwidth: { uploadBytesPerSecond: 1024 } }]), { clock });
    const held = r.forUser('a');
    held.user.upload!.take(MiB);
    const ticket = held.user.upload!.take(1)!;
    r.reload(config([{ username: 'a', bandwidth: { downloadBytesPerSecond: MiB } }]));
    await ticket.admitted;
    expect(held.user.upload).toBeUndefined();
    expect(held.user.download!.rate).toBe(MiB);
    expect(clock.pending).toBe(0);
  });

  it('a user removed by a reload keeps the limit their running sessions have', () => {
    const r = new BandwidthRegistry(config([{ username: 'a', bandwidth: { uploadBytesPerSecond: MiB } }, { username: 'b' }]), { clock: new ManualClock() });
    r.reload(config([{ username: 'b' }]));
    expect(r.forUser('a').user.upload!.rate).toBe(MiB);
  });

  it('reports waits by direction', async () => {
    const clock = new ManualClock();
    const waits: string[] = [];
    const r = new BandwidthRegistry(config([{ username: 'a', bandwidth: { downloadBytesPerSecond: 64 * 1024 } }]), { clock, onWait: (d, s) => waits.push(`${d} ${s}`) });
    const bucket = r.forUser('a').user.download!;
    bucket.take(32 * 1024);
    void bucket.take(32 * 1024);
    await clock.advance(600);
    expect(waits).toEqual(['download 0.5']);
  });
});
