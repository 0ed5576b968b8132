import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sdNotify } from '../../../src/net/native.js';
import { serviceNotifier } from '../../../src/admin/sd-notify.js';
import { notifySocket, type NotifySocket } from '../../helpers/notify-socket.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function pathSocket(): Promise<NotifySocket> {
  const dir = await mkdtemp(join(tmpdir(), 'sd-notify-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const s = await notifySocket(join(dir, 'notify'));
  cleanups.push(() => s.close());
  return s;
}

describe('sdNotify (native/notify.c)', () => {
  it('sends the message as one datagram to a socket path, from this process', async () => {
    const s = await pathSocket();
    sdNotify(s.address, 'READY=1\nSTATUS=listening on 127.0.0.1:2222');
    const d = await s.waitFor(() => true);
    expect(d.message).toBe('READY=1\nSTATUS=listening on 127.0.0.1:2222');
    expect(d.pid).toBe(process.pid);
  });

  it("reaches an abstract socket when the address starts with '@'", async () => {
    const s = await notifySocket(`@sftp-chroot-test-${randomBytes(6).toString('hex')}`);
    cleanups.push(() => s.close());
    sdNotify(s.address, 'STOPPING=1');
    expect((await s.waitFor(() => true)).message).toBe('STOPPING=1');
  });

  it('throws ENOENT with errno and syscall when no socket exists at the path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sd-notify-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    expect(() => sdNotify(join(dir, 'missing'), 'READY=1')).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'sendto', errno: 2 }));
  });

  it("refuses an address that is neither an absolute path nor '@name' (EAFNOSUPPORT), and one too long for sun_path", () => {
    expect(() => sdNotify('relative/notify', 'READY=1')).toThrow(expect.objectContaining({ code: 'EAFNOSUPPORT' }));
    expect(() => sdNotify('vsock:2:1234', 'READY=1')).toThrow(expect.objectContaining({ code: 'EAFNOSUPPORT' }));
    expect(() => sdNotify(`/${'x'.repeat(200)}`, 'READY=1')).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });

  it('throws a TypeError for arguments that are not strings', () => {
    expect(() => (sdNotify as (a: unknown, b: unknown) => void)(3, 'READY=1')).toThrow(TypeError);
  });
});

describe('serviceNotifier', () => {
  it('does nothing without NOTIFY_SOCKET', () => {
    const sent: string[] = [];
    const n = serviceNotifier({ env: {}, send: (_p, m) => void sent.push(m) });
    n.ready('listening');
    n.reloading();
    n.stopping('SIGTERM');
    expect(sent).toEqual([]);
  });

  it('sends READY=1 with a STATUS, RELOADING=1 with MONOTONIC_USEC, and STOPPING=1 to NOTIFY_SOCKET', async () => {
    const s = await pathSocket();
    const n = serviceNotifier({ env: { NOTIFY_SOCKET: s.address } });
    n.ready('listening on 127.0.0.1:2222');
    n.reloading();
    n.stopping('SIGTERM: draining');
    await s.waitFor((d) => 'STOPPING' in d.fields);
    expect(s.received.map((d) => d.fields)).toEqual([
      { READY: '1', STATUS: 'listening on 127.0.0.1:2222' },
      { RELOADING: '1', MONOTONIC_USEC: expect.stringMatching(/^\d+$/), STATUS: 'reloading the configuration' },
      { STOPPING: '1', STATUS: 'SIGTERM: draining' },
    ]);
  });

  it('keeps a status with line breaks on one STATUS line', () => {
    const sent: string[] = [];
    serviceNotifier({ env: { NOTIFY_SOCKET: '/run/x' }, send: (_p, m) => void sent.push(m) }).ready('a\nREADY=0\r\nb');
    expect(sent).toEqual(['READY=1\nSTATUS=a READY=0 b']);
  });

  it('reports a failed send to onError instead of throwing', () => {
    const errors: Error[] = [];
    const n = serviceNotifier({ env: { NOTIFY_SOCKET: '/nonexistent-dir/notify' }, onError: (e) => errors.push(e) });
    expect(() => n.ready('listening')).not.toThrow();
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ENOENT']);
  });
});
