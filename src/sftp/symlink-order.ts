/**
 * SSH_FXP_SYMLINK's argument order. The draft says (linkpath, targetpath); OpenSSH's client and
 * server swapped them, and clients followed one or the other, some only when the server's banner is
 * OpenSSH's (ours is not). What each client puts on the wire to this server, read from its source
 * and checked on the wire where the client is installable (see README "SYMLINK order"):
 *   target first: OpenSSH (and lftp, which runs ssh), paramiko, libssh2 (curl, PHP ssh2), JSch,
 *     Apache MINA SSHD, Go's x/crypto + pkg/sftp (rclone), SSH.NET, phpseclib 3.0.0–3.0.10
 *   link first:  asyncssh, libssh, WinSCP, ssh2 (ssh2-sftp-client), sshj, Twisted, russh
 * ssh2 itself already swaps back for OpenSSH and dropbear idents, so its SYMLINK event gives
 * (link, target) for them; this module decides only for the others. A client in neither list
 * (phpseclib's ident does not say which 3.0.x it is) is judged by the request (linkAndTarget): the
 * link is the name that does not exist yet, and the target the one that does; when that does not
 * tell, the draft's order.
 */
import { posix } from 'node:path';

/** Swapped back by ssh2 before the event (its own RE_OPENSSH test, lib/protocol/SFTP.js). */
const SWAPPED_BY_SSH2 = /^SSH-2\.0-(?:OpenSSH|dropbear)/;
const TARGET_FIRST = /^SSH-2\.0-(?:paramiko|libssh2_|JSCH[-_]|APACHE-SSHD|Go\b|rclone\/|Renci\.SshNet)/i;
const LINK_FIRST = /^SSH-2\.0-(?:AsyncSSH|libssh_|WinSCP|ssh2js|SSHJ|Twisted|russh)/i;

export type SymlinkOrder = 'as-event' | 'swapped' | 'by-request';

/** How to read the SYMLINK event's (first, second) for a client with this identification string. */
export function symlinkOrderFor(clientIdent: string): SymlinkOrder {
  if (SWAPPED_BY_SSH2.test(clientIdent) || LINK_FIRST.test(clientIdent)) return 'as-event';
  if (TARGET_FIRST.test(clientIdent)) return 'swapped';
  return 'by-request';
}

/**
 * For clients of unknown habit: `exists(path)` says whether a name is taken (a path as the client
 * sends it). Each reading — the draft's (first is the link) and OpenSSH's (second is the link) — is
 * judged: its link must be free, and a reading whose target exists (relative targets count from the
 * link's directory, as the kernel resolves them) beats one whose target does not. A tie keeps the
 * draft's order.
 */
export async function linkAndTarget(
  order: SymlinkOrder,
  first: string,
  second: string,
  exists: (path: string) => Promise<boolean>,
): Promise<{ link: string; target: string }> {
  const draft = { link: first, target: second };
  const swapped = { link: second, target: first };
  if (order === 'as-event') return draft;
  if (order === 'swapped') return swapped;
  const score = async (r: { link: string; target: string }): Promise<number> => {
    if (await exists(r.link)) return 0;
    const target = r.target.startsWith('/') ? r.target : posix.join(posix.dirname(r.link), r.target);
    return (await exists(target)) ? 2 : 1;
  };
  const [d, s] = await Promise.all([score(draft), score(swapped)]);
  return s > d ? swapped : draft;
}
