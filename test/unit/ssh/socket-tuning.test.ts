/**
 * readIntoSharedBuffer() relies on Node's `onread` internals for accepted sockets; these tests fail
 * if a Node upgrade changes them (it would then fall back to a fresh buffer per read, slower but
 * correct) or if data, end of stream or pause/resume stop working on a switched socket.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { PACED_WINDOW, paceClientWindow, readIntoSharedBuffer } from '../../../src/ssh/socket-tuning.js';
import { tcpPairs, type TcpPair } from '../../helpers/tcp.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()?.();
});

/** `n` loopback pairs, closed after the test. */
async function pairs(n: number): Promise<TcpPair[]> {
  const t = await tcpPairs(n);
  cleanups.push(t.close);
  return t.pairs;
}

describe('readIntoSharedBuffer', () => {
  it('two connections read into one shared buffer, and every byte and the end of stream arrive', async () => {
    const ps = await pairs(2);
    const announced: ArrayBuffer[] = [];
    const memory = new Set<ArrayBufferLike>();
    const received: Buffer[][] = [[], []];
    for (const [i, p] of ps.entries()) {
      expect(readIntoSharedBuffer(p.server, { setTransientInput: (ab) => announced.push(ab) })).toBe(true);
      p.server.on('data', (d: Buffer) => {
        memory.add(d.buffer);
        received[i]!.push(Buffer.from(d)); // the chunk's memory is reused after this callback
      });
    }
    const sent = [randomBytes(1024 * 1024 + 3), randomBytes(700 * 1024)];
    const ends = ps.map((p) => once(p.server, 'end'));
    for (const [i, p] of ps.entries()) {
      // Interleaved writes, so reads of the two sockets alternate.
      for (let o = 0; o < sent[i]!.length; o += 50_000) p.client.write(sent[i]!.subarray(o, o + 50_000));
      p.client.end();
    }
    await Promise.all(ends);
    expect(Buffer.concat(received[0]!).equals(sent[0]!)).toBe(true);
    expect(Buffer.concat(received[1]!).equals(sent[1]!)).toBe(true);
    expect(memory.size).toBe(1);
    expect(announced).toHaveLength(2);
    expect(announced[0]).toBe(announced[1]);
    expect([...memory][0]).toBe(announced[0]);
  });

  it('pause() stops the reads and resume() brings them back', async () => {
    const [p] = await pairs(1);
    expect(readIntoSharedBuffer(p!.server, { setTransientInput: () => undefined })).toBe(true);
    let bytes = 0;
    p!.server.on('data', (d: Buffer) => (bytes += d.length));
    p!.client.write(Buffer.alloc(1000));
    await new Promise((r) => setTimeout(r, 50));
    expect(bytes).toBe(1000);
    p!.server.pause();
    p!.client.write(Buffer.alloc(2000));
    await new Promise((r) => setTimeout(r, 50));
    expect(bytes).toBe(1000);
    p!.server.resume();
    await new Promise((r) => setTimeout(r, 50));
    expect(bytes).toBe(3000);
  });

  it('leaves a socket alone while bytes wait in its stream buffer (they would arrive after newer ones)', async () => {
    const [p] = await pairs(1);
    const got: Buffer[] = [];
    p!.server.pause();
    p!.client.write(Buffer.from('first'));
    await new Promise((r) => setTimeout(r, 50));
    expect(p!.server.readableLength).toBe(5);
    expect(readIntoSharedBuffer(p!.server, { setTransientInput: () => undefined })).toBe(false);
    p!.server.on('data', (d: Buffer) => got.push(Buffer.from(d)));
    p!.server.resume();
    p!.client.write(Buffer.from('-second'));
    await new Promise((r) => setTimeout(r, 50));
    expect(Buffer.concat(got).toString()).toBe('first-second');
  });
});

describe('paceClientWindow', () => {
  const TWO_MIB = 2 * 1024 * 1024;
  it('uses only PACED_WINDOW of an OpenSSH client\'s window on a fast link', async () => {
    const [p] = await pairs(1);
    const channel = { outgoing: { window: TWO_MIB } };
    expect(paceClientWindow(channel, p!.server, 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10')).toBe(true);
    expect(channel.outgoing.window).toBe(PACED_WINDOW);
  });

  it('leaves other clients, and windows already that small, alone', async () => {
    const [p] = await pairs(1);
    for (const ident of ['SSH-2.0-PuTTY_Release_0.78', 'SSH-2.0-ssh2js1.17.0', 'SSH-2.0-Go']) {
      const channel = { outgoing: { window: TWO_MIB } };
      expect(paceClientWindow(channel, p!.server, ident)).toBe(false);
      expect(channel.outgoing.window).toBe(TWO_MIB);
    }
    const small = { outgoing: { window: PACED_WINDOW } };
    expect(paceClientWindow(small, p!.server, 'SSH-2.0-OpenSSH_9.2')).toBe(false);
    expect(small.outgoing.window).toBe(PACED_WINDOW);
  });
});

