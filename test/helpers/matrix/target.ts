/**
 * A `Target`: the server the matrix's clients talk to, with everything a client needs to reach it
 * (address, user, password, key files, known_hosts, host key fingerprints) and the host path of the
 * user's root, where the harness checks what each client did.
 *
 * Two servers: the project's test double (default), or with `MATRIX_TARGET=openssh` a private
 * OpenSSH sshd with ChrootDirectory + internal-sftp, to compare by hand (needs root).
 */
import type { ClientKeys } from './keys.js';

export interface Target {
  readonly kind: 'double' | 'openssh';
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Key files: `keys.ed25519`, `keys.rsa`, `keys.ecdsa` are authorised, `keys.wrong` is not. */
  readonly keys: ClientKeys;
  /** An OpenSSH known_hosts file naming every host key as `[127.0.0.1]:port`. */
  readonly knownHostsFile: string;
  /** `SHA256:…` by host key type ('ssh-ed25519', 'ecdsa-sha2-nistp256'). */
  readonly hostKeyFingerprints: Readonly<Record<string, string>>;
  /** Host path of the user's root (`/` as the client sees it). */
  readonly root: string;
  /** Owner for files the harness puts into the root (OpenSSH: the system user), if not the test's own. */
  readonly owner?: { uid: number; gid: number };
  /**
   * The public-key signature algorithms the server saw in successful logins so far (e.g.
   * 'rsa-sha2-512'), for clients whose choice cannot be forced; empty where the server does not say.
   */
  signatureAlgorithms(): Promise<string[]>;
  close(): Promise<void>;
}

/** Fixture files, by virtual path; a path ending in "/" is a directory. */
export type TargetFiles = Record<string, string | Buffer>;

export async function openTarget(files: TargetFiles): Promise<Target> {
  const kind = process.env.MATRIX_TARGET ?? 'double';
  if (kind === 'openssh') return (await import('./openssh-target.js')).startOpenSshTarget(files);
  if (kind !== 'double') throw new Error(`MATRIX_TARGET=${kind}: expected "double" or "openssh"`);
  return (await import('./double-target.js')).startDoubleTarget(files);
}

/** A note for an RSA test whose client picks the algorithm: what the target saw, if it can tell. */
export async function rsaNote(t: Target): Promise<string> {
  const rsa = [...new Set((await t.signatureAlgorithms()).filter((a) => a.includes('rsa')))];
  return `server saw: ${rsa.join(', ') || '(this target does not log signature algorithms)'}`;
}
