/**
 * systemd readiness (sd_notify(3), for `Type=notify`): READY=1 once the daemon listens,
 * RELOADING=1 … READY=1 around a SIGHUP reload, STOPPING=1 when it starts draining. Without
 * $NOTIFY_SOCKET (not started by systemd) every call does nothing. A failed send is reported to
 * `onError` and never stops the daemon: systemd then times the start out, which is visible enough.
 */
import { sdNotify } from '../net/native.js';

export interface ServiceNotifier {
  /** READY=1 with a STATUS line (also after a reload). */
  ready(status: string): void;
  /** RELOADING=1 with the monotonic timestamp systemd ≥ 253 asks for. */
  reloading(): void;
  stopping(status: string): void;
}

export interface NotifierOptions {
  /** Where $NOTIFY_SOCKET is read from (process.env by default). */
  env?: NodeJS.ProcessEnv;
  /** The datagram sender (the addon's by default). */
  send?: (socketPath: string, message: string) => void;
  onError?: (e: Error) => void;
}

/** STATUS= is one line: anything after a newline would be read as another assignment. */
const line = (s: string) => s.replace(/[\r\n]+/g, ' ');

/** CLOCK_MONOTONIC in microseconds: libuv's hrtime reads that clock on Linux. */
const monotonicUsec = () => process.hrtime.bigint() / 1000n;

export function serviceNotifier(o: NotifierOptions = {}): ServiceNotifier {
  const socket = (o.env ?? process.env).NOTIFY_SOCKET;
  const send = o.send ?? sdNotify;
  const notify = (fields: string[]) => {
    if (!socket) return;
    try {
      send(socket, fields.join('\n'));
    } catch (e) {
      o.onError?.(e instanceof Error ? e : new Error(String(e)));
    }
  };
  return {
    ready: (status) => notify(['READY=1', `STATUS=${line(status)}`]),
    reloading: () => notify(['RELOADING=1', `MONOTONIC_USEC=${monotonicUsec()}`, 'STATUS=reloading the configuration']),
    stopping: (status) => notify(['STOPPING=1', `STATUS=${line(status)}`]),
  };
}
