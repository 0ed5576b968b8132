import { afterEach, describe, it, expect } from 'vitest';
import { Socket, type AddressInfo } from 'node:net';
import type { Connection, SFTPWrapper } from 'ssh2';
import { packetsHeldForRekey, sendExitStatus, socketOf, ssh2, transientInputOf } from '../../../src/ssh/ssh2.js';

const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/** A server-side Connection and SFTP channel, logged in by ssh2's own client over loopback. */
async function sftpPair(): Promise<{ server: Connection; sftp: SFTPWrapper; clientPort: number }> {
  let server!: Connection;
  const gotSftp = new Promise<SFTPWrapper>((resolve) => {
    const srv = new ssh2.Server({ hostKeys: [hostKey] }, (c) => {
      server = c;
      c.on('authentication', (ctx) => ctx.accept());
      c.on('ready', () => c.on('session', (accept) => accept().on('sftp', (acceptSftp) => resolve(acceptSftp()))));
    });
    srv.listen(0, '127.0.0.1', () => {
      const client = new ssh2.Client();
      client.on('ready', () => client.sftp(() => undefined));
      client.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, username: 'u' });
      cleanups.push(() => client.end(), () => srv.close());
    });
  });
  const sftp = await gotSftp;
  return { server, sftp, clientPort: (socketOf(server) as Socket).remotePort! };
}

describe('the ssh2 doorway', () => {
  it("reads a live connection's socket, its rekey queue and the patched transient-input hook", async () => {
    const { server, clientPort } = await sftpPair();
    const socket = socketOf(server);
    expect(socket).toBeInstanceOf(Socket);
    expect(socket!.remotePort).toBe(clientPort);
    expect(packetsHeldForRekey(server)).toBe(0);
    expect(typeof transientInputOf(server).setTransientInput).toBe('function');
  });

  it('sends exit-status on an open channel only', async () => {
    const { sftp } = await sftpPair();
    expect(sendExitStatus(sftp, 0)).toBe(true);
    expect(sendExitStatus({} as SFTPWrapper, 0)).toBe(false);
  });
});
