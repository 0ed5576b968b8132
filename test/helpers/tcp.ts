/** Real loopback TCP connections for tests of socket-level code. */
import net from 'node:net';
import { once } from 'node:events';

export interface TcpPair {
  /** The connecting end. */
  client: net.Socket;
  /** The accepted end. */
  server: net.Socket;
}

/** A listening server and `n` connected pairs (server sides in connection order); close() ends all of it. */
export async function tcpPairs(n: number): Promise<{ pairs: TcpPair[]; close(): void }> {
  const accepted: net.Socket[] = [];
  const waiters: ((s: net.Socket) => void)[] = [];
  const srv = net.createServer((s) => {
    const w = waiters.shift();
    if (w) w(s);
    else accepted.push(s);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  const pairs: TcpPair[] = [];
  for (let i = 0; i < n; i++) {
    const server = new Promise<net.Socket>((r) => (accepted.length ? r(accepted.shift()!) : waiters.push(r)));
    const client = net.connect(port, '127.0.0.1');
    await once(client, 'connect');
    pairs.push({ client, server: await server });
  }
  return {
    pairs,
    close: () => {
      for (const p of pairs) {
        p.client.destroy();
        p.server.destroy();
      }
      srv.close();
    },
  };
}

/** The fd behind a connected net.Socket (Node's internal handle). */
export function socketFd(s: net.Socket): number {
  return (s as unknown as { _handle: { fd: number } })._handle.fd;
}
