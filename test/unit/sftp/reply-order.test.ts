import { describe, it, expect } from 'vitest';
import { ReplyOrder } from '../../../src/sftp/reply-order.js';

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('ReplyOrder', () => {
  it('a reply waits until every reply reserved before it has been sent', async () => {
    const order = new ReplyOrder(() => true);
    const sent: number[] = [];
    const [first, second, third] = [order.slot(), order.slot(), order.slot()];
    third(() => sent.push(3));
    second(() => sent.push(2));
    await settle();
    expect(sent).toEqual([]);
    first(() => sent.push(1));
    await settle();
    expect(sent).toEqual([1, 2, 3]);
  });

  it('replies whose turn comes after the channel is gone are dropped', async () => {
    let open = true;
    const order = new ReplyOrder(() => open);
    const sent: number[] = [];
    const first = order.slot();
    const second = order.slot();
    second(() => sent.push(2));
    open = false;
    first(() => sent.push(1));
    await settle();
    expect(sent).toEqual([]);
  });

  it('a reply that throws (the channel closed under it) does not hold back the ones after it', async () => {
    const order = new ReplyOrder(() => true);
    const sent: number[] = [];
    order.slot()(() => {
      throw new Error('channel closed');
    });
    order.slot()(() => sent.push(2));
    await settle();
    expect(sent).toEqual([2]);
  });
});
