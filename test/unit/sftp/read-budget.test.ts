import { describe, it, expect } from 'vitest';
import { ReadBudget, type Release } from '../../../src/sftp/read-budget.js';

function budget(cap: number) {
  const channel = { queued: 0, inPlace: true, outgoingBytes: () => channel.queued, dataInPlace: () => channel.inPlace };
  const state = { ending: false };
  return { b: new ReadBudget(channel, cap, state), channel, state };
}
const settle = () => new Promise((r) => setTimeout(r, 0));

describe('ReadBudget', () => {
  it('a READ that fits is granted at once; one that does not waits until a reservation ends', async () => {
    const { b } = budget(100);
    const first = await b.reserve(60);
    let second: Release | undefined;
    void b.reserve(60).then((r) => (second = r));
    await settle();
    expect(second).toBeUndefined();
    first();
    await settle();
    expect(second).toBeDefined();
    expect(b.reserved).toBe(60);
  });

  it('grants in request order: a small later READ does not overtake a larger one that waits', async () => {
    const { b } = budget(100);
    const first = await b.reserve(60);
    const granted: string[] = [];
    void b.reserve(60).then(() => granted.push('large'));
    void b.reserve(10).then(() => granted.push('small'));
    await settle();
    expect(granted).toEqual([]);
    first();
    await settle();
    expect(granted).toEqual(['large', 'small']);
  });

  it('one READ always runs when nothing is reserved, whatever its size', async () => {
    const { b } = budget(100);
    await b.reserve(1000);
    expect(b.reserved).toBe(1000);
  });

  it('nothing is granted while the replies queued for the client exceed the cap, until grant() after they drain', async () => {
    const { b, channel } = budget(100);
    channel.queued = 150;
    let granted = false;
    void b.reserve(10).then(() => (granted = true));
    await settle();
    expect(granted).toBe(false);
    channel.queued = 0;
    b.grant();
    await settle();
    expect(granted).toBe(true);
  });

  it('once the session is ending, every waiting READ is let through', async () => {
    const { b, state } = budget(100);
    await b.reserve(100);
    let granted = 0;
    for (let i = 0; i < 3; i++) void b.reserve(100).then(() => granted++);
    state.ending = true;
    b.grant();
    await settle();
    expect(granted).toBe(3);
  });

  it('releasing a reservation twice frees its bytes once', async () => {
    const { b } = budget(100);
    const a = await b.reserve(30);
    await b.reserve(30);
    a();
    a();
    expect(b.reserved).toBe(30);
  });

  it('a buffer ssh2 keeps (client window full) returns to the pool once sent, and not before', () => {
    const { b, channel } = budget(100);
    const buf = b.take();
    channel.inPlace = false;
    b.send(1, buf, 4);
    expect(b.take()).not.toBe(buf);
    b.sent(Buffer.from(buf.buffer, buf.byteOffset, 17));
    expect(b.take()).toBe(buf);
  });
});
