/**
 * What a connection may do besides SFTP: nothing. Every other channel, session request and global
 * request is refused with a failure reply and logged. ssh2 would auto-refuse most of these when
 * nobody listens; listening explicitly makes each refusal visible and tested.
 */
import type { Connection, Session } from 'ssh2';

export type Refuse = (what: string, detail?: string) => void;

const SESSION_REQUESTS = ['pty', 'shell', 'exec', 'x11', 'auth-agent', 'signal', 'window-change', 'break'] as const;

/** Refuses every session request except the `sftp` subsystem (handled by the caller). */
export function refuseSessionRequests(session: Session, refuse: Refuse): void {
  for (const name of SESSION_REQUESTS) {
    session.on(name, (accept: unknown, reject: unknown, info: unknown) => {
      const what = name === 'auth-agent' ? 'auth-agent-req@openssh.com' : name === 'pty' ? 'pty-req' : name === 'x11' ? 'x11-req' : name;
      const detail = name === 'exec' && info && typeof (info as { command?: unknown }).command === 'string' ? (info as { command: string }).command.slice(0, 200) : undefined;
      refuse(what, detail);
      if (typeof reject === 'function') reject();
    });
  }
  // Environment variables (SendEnv LANG LC_*) arrive on every OpenSSH session: refuse quietly.
  session.on('env', (_accept: unknown, reject: unknown) => {
    if (typeof reject === 'function') reject();
  });
  session.on('subsystem', (_accept: unknown, reject: unknown, info: { name: string }) => {
    refuse('subsystem', String(info?.name ?? '').slice(0, 100));
    if (typeof reject === 'function') reject();
  });
}

/** sshd's answer to a forwarding it does not permit: "open failed: administratively prohibited: open failed". */
const PROHIBITED = 1;
type RejectWithReason = (code?: number, description?: string) => void;

/** Refuses forwarding channels and global requests on the connection. */
export function refuseConnectionRequests(client: Connection, refuse: Refuse): void {
  client.on('tcpip', (_accept, reject, info) => {
    refuse('direct-tcpip', `${info.destIP}:${info.destPort}`.slice(0, 300));
    // Patched ssh2: the reason code and text (stock sends "connect failed" with no text).
    (reject as RejectWithReason)(PROHIBITED, 'open failed');
  });
  client.on('openssh.streamlocal', (_accept, reject, info) => {
    refuse('direct-streamlocal@openssh.com', String(info.socketPath).slice(0, 300));
    (reject as RejectWithReason)(PROHIBITED, 'open failed');
  });
  client.on('request', (_accept, reject, name, info) => {
    const i = info as { bindAddr?: string; bindPort?: number; socketPath?: string };
    const detail = i.bindPort !== undefined ? `${i.bindAddr ?? ''}:${i.bindPort}` : i.socketPath !== undefined ? String(i.socketPath) : undefined;
    refuse(name, detail?.slice(0, 300));
    reject?.();
  });
  client.on('refused-channel', (e: { type: string }) => refuse(`channel:${String(e.type).slice(0, 100)}`));
  client.on('refused-global-request', (e: { name: string }) => refuse(`global-request:${String(e.name).slice(0, 100)}`));
}
