/**
 * Per-connection TCP tuning: fewer write syscalls, no delayed-ACK stalls, and no ACK packet of
 * its own for a request whose reply is on the way.
 */
import type { Socket } from 'node:net';
import * as native from '../jail/native.js';

/** How long a client's data may go unanswered before its ACK is sent on its own. */
const LONE_ACK_AFTER_MS = 1;

/**
 * ssh2 writes every SSH packet with its own socket.write(): with TCP_NODELAY that is one syscall and
 * one TCP segment per reply. Cork the socket at the first write of an event-loop turn and uncork it
 * after the turn's I/O callbacks, so the replies produced together leave in one writev.
 *
 * Clients with Nagle on (ssh2's own client never sets TCP_NODELAY) hold back their next small
 * packet until the previous one is ACKed, and Linux delays ACKs by 40 ms. Forcing TCP_QUICKACK on
 * every read fixed that but cost a lone ACK segment per request (~18 µs of syscall each, a sixth
 * of the server's CPU on small files); now the ACK rides on the reply, and TCP_QUICKACK is set only
 * when data has gone unanswered for LONE_ACK_AFTER_MS (a request that needs more packets, or a
 * slow disk).
 */
export function tuneSocket(socket: Socket): void {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  let unanswered = false;
  socket.write = ((...args: unknown[]) => {
    unanswered = false;
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    return write(...args);
  }) as Socket['write'];

  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    timer = undefined;
    if (unanswered && !socket.destroyed) native.setQuickAck(fd);
  };
  socket.on('data', () => {
    unanswered = true;
    if (timer === undefined) {
      timer = setTimeout(check, LONE_ACK_AFTER_MS);
      timer.unref();
    }
  });
}
