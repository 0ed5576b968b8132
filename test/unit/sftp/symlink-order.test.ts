import { describe, it, expect } from 'vitest';
import { linkAndTarget, symlinkOrderFor, type SymlinkOrder } from '../../../src/sftp/symlink-order.js';

/** One real-looking identification string per client family named in src/sftp/symlink-order.ts. */
const IDENTS: [family: string, ident: string, order: SymlinkOrder][] = [
  // ssh2 already swapped these back before the SYMLINK event.
  ['OpenSSH', 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3', 'as-event'],
  ['dropbear', 'SSH-2.0-dropbear_2022.83', 'as-event'],
  // Target first on the wire to a server that is not OpenSSH: the event's (first, second) is (target, link).
  ['paramiko', 'SSH-2.0-paramiko_3.4.0', 'swapped'],
  ['libssh2 (curl, PHP ssh2)', 'SSH-2.0-libssh2_1.10.0', 'swapped'],
  ['jcraft JSch', 'SSH-2.0-JSCH-0.1.55', 'swapped'],
  ['mwiede JSch', 'SSH-2.0-JSCH_0.2.17', 'swapped'],
  ['Apache MINA SSHD', 'SSH-2.0-APACHE-SSHD-2.12.0', 'swapped'],
  ["Go's x/crypto/ssh", 'SSH-2.0-Go', 'swapped'],
  ['rclone', 'SSH-2.0-rclone/v1.66.0', 'swapped'],
  ['SSH.NET', 'SSH-2.0-Renci.SshNet.SshClient.2023.0.0', 'swapped'],
  // Link first (the draft's order).
  ['AsyncSSH', 'SSH-2.0-AsyncSSH_2.14.2', 'as-event'],
  ['libssh', 'SSH-2.0-libssh_0.10.6', 'as-event'],
  ['WinSCP', 'SSH-2.0-WinSCP_release_6.3.3', 'as-event'],
  ['ssh2 (ssh2-sftp-client)', 'SSH-2.0-ssh2js1.17.0', 'as-event'],
  ['sshj', 'SSH-2.0-SSHJ_0.38.0', 'as-event'],
  ['Twisted Conch', 'SSH-2.0-Twisted_24.3.0', 'as-event'],
  ['russh', 'SSH-2.0-russh_0.43.0', 'as-event'],
  // Neither list: judged by the request.
  ['phpseclib (no version that tells)', 'SSH-2.0-phpseclib_3.0', 'by-request'],
  ['a name that only starts like Go', 'SSH-2.0-GoAnywhere_7.4', 'by-request'],
  ['an empty identification', '', 'by-request'],
];

/** exists() over a fixed set of taken names. */
const taken = (...names: string[]) => async (p: string) => names.includes(p);

describe('symlinkOrderFor', () => {
  it.each(IDENTS)('reads a %s client (%s) as %s', (_family, ident, order) => {
    expect(symlinkOrderFor(ident)).toBe(order);
  });
});

describe('linkAndTarget', () => {
  it('takes the event as (link, target) for a client known to send the link first', async () => {
    expect(await linkAndTarget('as-event', '/link', 'target', taken('target'))).toEqual({ link: '/link', target: 'target' });
  });

  it('swaps the event for a client known to send the target first', async () => {
    expect(await linkAndTarget('swapped', 'target', '/link', taken('target'))).toEqual({ link: '/link', target: 'target' });
  });

  it('by request: when the first name exists and the second is free, the free one is the link', async () => {
    expect(await linkAndTarget('by-request', '/data/file.txt', '/data/link', taken('/data/file.txt'))).toEqual({ link: '/data/link', target: '/data/file.txt' });
  });

  it("by request: when the first name is free and the second exists, the draft's order holds", async () => {
    expect(await linkAndTarget('by-request', '/data/link', '/data/file.txt', taken('/data/file.txt'))).toEqual({ link: '/data/link', target: '/data/file.txt' });
  });

  it("by request: when both names are free (a dangling link), the draft's order holds", async () => {
    expect(await linkAndTarget('by-request', '/a', '/b', taken())).toEqual({ link: '/a', target: '/b' });
  });

  it("by request: a relative target counts from the link's directory (OpenSSH's order, link in a subdirectory)", async () => {
    // ln -s inner.txt /dir/link from a target-first client: /inner.txt does not exist, /dir/inner.txt does.
    expect(await linkAndTarget('by-request', 'inner.txt', '/dir/link', taken('/dir/inner.txt'))).toEqual({ link: '/dir/link', target: 'inner.txt' });
  });

  it("by request: when neither reading's target exists and both links are free, the draft's order holds", async () => {
    expect(await linkAndTarget('by-request', '/dir/link', 'missing.txt', taken())).toEqual({ link: '/dir/link', target: 'missing.txt' });
  });

  it("by request: when both names exist, the draft's order holds (the link then fails as it would anyway)", async () => {
    expect(await linkAndTarget('by-request', '/a', '/b', taken('/a', '/b'))).toEqual({ link: '/a', target: '/b' });
  });
});
