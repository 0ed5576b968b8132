import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, openSync } from 'node:fs';
import { setQuickAck, tcpMinRtt } from '../../../src/net/native.js';
import { socketFd, tcpPairs } from '../../helpers/tcp.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()?.();
});

/** An fd that is not a socket: the calls must answer, not throw. */
function fileFd(): number {
  const fd = openSync('/dev/null', 'r');
  cleanups.push(() => closeSync(fd));
  return fd;
}

describe('TCP options', () => {
  it('setQuickAck works on a TCP socket and reports false otherwise', async () => {
    expect(setQuickAck(fileFd())).toBe(false);
    const tcp = await tcpPairs(1);
    cleanups.push(tcp.close);
    expect(setQuickAck(socketFd(tcp.pairs[0]!.client))).toBe(true);
  });

  it("tcpMinRtt reads a loopback connection's lowest RTT (well under 1 ms) and -1 for a file", async () => {
    expect(tcpMinRtt(fileFd())).toBe(-1);
    const tcp = await tcpPairs(1);
    cleanups.push(tcp.close);
    const { client, server } = tcp.pairs[0]!;
    client.write('x');
    await new Promise((resolve) => server.once('data', resolve));
    const rtt = tcpMinRtt(socketFd(server));
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(rtt).toBeLessThan(1000);
  });

  it('a wrong argument is a TypeError, as for every addon function', () => {
    expect(() => setQuickAck(-1)).toThrow(TypeError);
    expect(() => tcpMinRtt('3' as unknown as number)).toThrow(TypeError);
  });
});
