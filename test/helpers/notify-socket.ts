/**
 * A stand-in for systemd's notify socket: Node cannot bind an AF_UNIX datagram socket, so a small
 * Python receiver does, and reports each datagram with the sender's pid (SO_PASSCRED, as systemd
 * checks NotifyAccess=main) as one JSON line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const PYTHON = '/usr/bin/python3';
const RECEIVER = String.raw`
import json, socket, struct, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind('\0' + addr[1:] if addr.startswith('@') else addr)
print(json.dumps({'bound': True}), flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = next((struct.unpack('iII', d[:12])[0] for l, t, d in anc if t == socket.SCM_CREDENTIALS), None)
    print(json.dumps({'pid': pid, 'message': msg.decode()}), flush=True)
`;

export interface Datagram {
  pid: number | null;
  message: string;
  /** The KEY=VALUE lines of the message. */
  fields: Record<string, string>;
}

export interface NotifySocket {
  /** The $NOTIFY_SOCKET value: a path, or '@name' for an abstract socket. */
  address: string;
  received: Datagram[];
  /** Resolves with the first datagram (already received or still to come) that `match` accepts. */
  waitFor(match: (d: Datagram) => boolean, ms?: number): Promise<Datagram>;
  close(): void;
}

const fieldsOf = (message: string) => Object.fromEntries(message.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

export async function notifySocket(address: string): Promise<NotifySocket> {
  const child: ChildProcess = spawn(PYTHON, ['-c', RECEIVER, address], { stdio: ['ignore', 'pipe', 'pipe'] });
  const received: Datagram[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const bound = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`notify receiver exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { bound?: true; pid?: number | null; message?: string };
      if (m.bound) return resolve();
      received.push({ pid: m.pid ?? null, message: m.message!, fields: fieldsOf(m.message!) });
      for (const w of waiters) w();
    });
  });
  await bound;
  return {
    address,
    received,
    waitFor: (match, ms = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const d = received.find(match);
          if (!d) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(d);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching datagram; received: ${JSON.stringify(received.map((r) => r.message))}`));
        }, ms);
        waiters.add(check);
        check();
      }),
    close: () => void child.kill('SIGKILL'),
  };
}
