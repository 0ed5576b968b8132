/**
 * SSH public and private keys as config files hold them: authorized_keys lines (options stripped),
 * host key files, SHA256 fingerprints. ssh2's own parser reads the key material.
 */
import { createHash } from 'node:crypto';
import { bundle } from '../vendor/ssh2-bundle.js';

const { utils } = bundle.ssh2;

export interface AuthorizedKey {
  /** Key type as on the wire, e.g. 'ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256'. */
  readonly type: string;
  /** SSH wire-format public key blob. */
  readonly blob: Buffer;
  readonly fingerprint: string;
  readonly comment: string;
  /** Verifies a signature made with this key. */
  verify(data: Buffer, signature: Buffer, hashAlgo?: string): boolean;
}

export interface HostKeyInfo {
  readonly type: string;
  readonly fingerprint: string;
}

const KEY_TYPE = /(?:^|\s)((?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-[a-z0-9@.-]+)\s+[A-Za-z0-9+/]+={0,3})(?:\s+(.*))?$/;

/** OpenSSH's form: "SHA256:" and the unpadded base64 of the blob's SHA-256. */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** ssh2's parseKey, first key only (it returns an array for some inputs). */
function parseOne(data: string | Buffer): ReturnType<typeof utils.parseKey> {
  const parsed = utils.parseKey(data);
  return Array.isArray(parsed) ? parsed[0] : parsed;
}

/**
 * Parses one OpenSSH authorized_keys line. Options before the key (`restrict,from="…"`) are
 * stripped; they are not enforced (the server only speaks SFTP anyway). Returns an Error for
 * a line that holds no usable key.
 */
export function parseAuthorizedKey(line: string): AuthorizedKey | Error {
  const m = KEY_TYPE.exec(line.trim());
  if (!m || m[1] === undefined) return new Error('expected an OpenSSH public key line such as "ssh-ed25519 AAAA… comment"');
  if (m[1].startsWith('sk-')) return new Error('security-key (sk-*) keys are not supported');
  const key = parseOne(m[1]);
  if (!key || key instanceof Error) return new Error(`unreadable public key${key instanceof Error ? `: ${key.message}` : ''}`);
  const blob = key.getPublicSSH();
  return {
    type: key.type,
    blob,
    fingerprint: fingerprintOf(blob),
    comment: (m[2] ?? '').trim(),
    verify: (data, signature, hashAlgo) => key.verify(data, signature, hashAlgo) === true,
  };
}

/** Lines of an authorized_keys file: blank lines and comments skipped. */
export function authorizedKeyLines(text: string): string[] {
  return text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
}

/** Parses a private host key and describes it; Error if ssh2 cannot use it. */
export function describeHostKey(pem: Buffer | string): HostKeyInfo | Error {
  const key = parseOne(pem);
  if (!key || key instanceof Error) {
    return new Error(
      `not a usable private key${key instanceof Error ? ` (${key.message})` : ''}; ` +
        'expected an unencrypted OpenSSH or PEM private key, e.g. from `sftp-chroot keygen`',
    );
  }
  if (!key.isPrivateKey()) return new Error('this is a public key; hostKeys needs the private key file');
  return { type: key.type, fingerprint: fingerprintOf(key.getPublicSSH()) };
}
