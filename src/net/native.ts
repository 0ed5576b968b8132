/**
 * The native addon's socket functions, typed (native/net.c, native/notify.c): TCP options Node does
 * not offer, and sd_notify's datagram, which Node cannot send. All synchronous: each is one
 * system call on a local socket. If the addon did not load, each throws the load error
 * (src/native/addon.ts).
 */
import { addon } from '../native/addon.js';

/** Every function of the net unit, once; the exports below are these, unwrapped. */
interface NetAddon {
  /** setsockopt(TCP_QUICKACK, 1); returns false on failure (never throws for a bad socket). */
  setQuickAck(fd: number): boolean;
  /** The lowest RTT the kernel has seen on a TCP socket, in microseconds; -1 when it is not one. */
  tcpMinRtt(fd: number): number;
  /**
   * sd_notify(3): sends `message` as one datagram to the AF_UNIX socket `socketPath` ($NOTIFY_SOCKET:
   * a path, or '@name' for an abstract socket). Throws an Error with code/errno/syscall on failure.
   */
  sdNotify(socketPath: string, message: string): void;
}

export const { setQuickAck, tcpMinRtt, sdNotify } = addon<NetAddon>();
