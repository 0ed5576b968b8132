/**
 * Per-connection TCP tuning: fewer write syscalls, no delayed-ACK stalls, and no ACK packet of
 * its own for a request whose reply is on the way.
 */
import type { Socket } from 'node:net';
import { setQuickAck, tcpMinRtt } from '../net/native.js';

/** How long a client's data may go unanswered before its ACK is sent on its own. */
const LONE_ACK_AFTER_MS = 1;

interface SocketHandle {
  fd?: number;
  useUserBuffer?(buf: Uint8Array): void;
}
/** Node's native handle behind a net.Socket (not public API: absent while connecting or once closed). */
function handleOf(socket: Socket): SocketHandle | undefined {
  return (socket as unknown as { _handle?: SocketHandle | null })._handle ?? undefined;
}
/** The socket's file descriptor, if it has one. */
function socketFd(socket: Socket): number | undefined {
  const fd = handleOf(socket)?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

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

  const fd = socketFd(socket);
  if (fd === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    timer = undefined;
    if (unanswered && !socket.destroyed) setQuickAck(fd);
  };
  socket.on('data', () => {
    unanswered = true;
    if (timer === undefined) {
      timer = setTimeout(check, LONE_ACK_AFTER_MS);
      timer.unref();
    }
  });
}

/** The buffer every switched connection of this process reads into (see readIntoSharedBuffer). */
const SHARED_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

interface TransientInput {
  setTransientInput?(arrayBuffer: ArrayBuffer): void;
}

/**
 * From now on, reads this socket into one buffer shared by all connections instead of a fresh
 * 64 KiB buffer per read. Why: an upload made ~16,000 of those per GiB, and V8 answered the
 * external memory with a full mark-compact every ~32 MiB; the garbage also kept handing the kernel
 * cold memory to copy into (perf: `_copy_to_iter` and `memmove` 3-7x slower than into warm memory).
 *
 * Safe because parsing is synchronous: each chunk is parsed whole before the next read, by
 * whichever connection, and ssh2 (patched: Protocol#setTransientInput) copies out everything that
 * outlives the parse. Uses Node's `onread` machinery on an accepted socket, which the public API
 * offers only for sockets Node creates itself; returns false and changes nothing where Node's
 * internals differ.
 */
export function readIntoSharedBuffer(socket: Socket, protocol: TransientInput): boolean {
  const handle = handleOf(socket);
  const symbols = Object.getOwnPropertySymbols(socket);
  const kBuffer = symbols.find((s) => s.description === 'kBuffer');
  const kBufferCb = symbols.find((s) => s.description === 'kBufferCb');
  if (!handle || typeof handle.useUserBuffer !== 'function' || !kBuffer || !kBufferCb) return false;
  if (typeof protocol.setTransientInput !== 'function' || socket.destroyed) return false;
  // Bytes already read but still queued in the stream would be emitted after newer ones.
  if (socket.readableLength > 0) return false;
  protocol.setTransientInput(SHARED_READ_BUFFER.buffer);
  const slots = socket as unknown as Record<symbol, unknown>;
  slots[kBuffer] = SHARED_READ_BUFFER;
  // Node calls this instead of emitting 'data'; the listeners (ssh2's parser, tuneSocket's) run as before.
  slots[kBufferCb] = (nread: number, buf: Buffer) => {
    socket.emit('data', buf.subarray(0, nread));
  };
  handle.useUserBuffer(SHARED_READ_BUFFER);
  return true;
}

/** How much of an OpenSSH client's channel window (2 MiB) the server fills on a fast link. */
export const PACED_WINDOW = 512 * 1024;
/** Links whose lowest RTT is below this are paced (512 KiB / 1 ms still allows 512 MB/s). */
export const PACE_BELOW_RTT_US = 1000;
const OPENSSH_CLIENT = /^SSH-2\.0-OpenSSH_/;

interface ChannelWindow {
  outgoing: { window: number };
}

/**
 * Leaves all but PACED_WINDOW of an OpenSSH client's window unused, on fast links only.
 *
 * Why: the OpenSSH client keeps what it cannot yet hand to `sftp` in a buffer it compacts with
 * `memmove` for every packet. A server that fills the whole 2 MiB window makes that buffer large,
 * which makes the client slower, which keeps it large: 20 concurrent downloads on 2 vCPUs settled
 * either near 300 MB/s or near 90 MB/s (3.5x the CPU for the same bytes), and a single download
 * cost the client 3.0 instead of 1.8 cpu-s per GiB.
 *
 * Safe with OpenSSH, which sends WINDOW_ADJUST as soon as more than three packets (96 KiB) are
 * outstanding and some were consumed (channel_check_window in channels.c); other clients may wait
 * for half their window and are left alone. On a slow link the bytes in flight bound the rate
 * (window / RTT), so links whose lowest RTT reaches PACE_BELOW_RTT_US keep the whole window.
 */
export function paceClientWindow(channel: ChannelWindow, socket: Socket, clientIdent: string): boolean {
  if (!OPENSSH_CLIENT.test(clientIdent)) return false;
  const fd = socketFd(socket);
  if (fd === undefined) return false;
  const rtt = tcpMinRtt(fd);
  if (rtt < 0 || rtt >= PACE_BELOW_RTT_US) return false;
  const reserve = channel.outgoing.window - PACED_WINDOW;
  if (reserve <= 0) return false;
  channel.outgoing.window -= reserve;
  return true;
}
