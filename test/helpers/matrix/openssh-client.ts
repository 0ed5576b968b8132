/**
 * OpenSSH client options for a target and an auth cell (shared by sftp, scp, and lftp, which runs
 * ssh as its connect program), and what `ssh -v` says about the login.
 */
import type { AuthCell } from './cells.js';
import { keyFileFor } from './keys.js';
import type { Target } from './target.js';

export interface SshAuth {
  /** ssh options (no host, no port). */
  readonly options: string[];
  /** The cell needs a password typed at a prompt (sshpass). */
  readonly password: boolean;
}

export function sshAuth(t: Target, cell: AuthCell): SshAuth {
  const common = [
    '-F', '/dev/null', '-o', `UserKnownHostsFile=${t.knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentityAgent=none', '-o', 'IdentitiesOnly=yes',
    '-o', 'ConnectTimeout=10', '-o', 'NumberOfPasswordPrompts=1',
  ];
  const key = keyFileFor(t.keys, cell);
  switch (cell) {
    case 'password':
      return { options: [...common, '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no'], password: true };
    case 'keyboard-interactive':
      return { options: [...common, '-o', 'PreferredAuthentications=keyboard-interactive', '-o', 'PubkeyAuthentication=no'], password: true };
    case 'wrongkey-then-password':
      return { options: [...common, '-o', 'PreferredAuthentications=publickey,password', '-i', key!], password: true };
    case 'rsa-sha2-256':
    case 'rsa-sha2-512':
      return { options: [...common, '-o', 'PreferredAuthentications=publickey', '-o', `PubkeyAcceptedAlgorithms=${cell}`, '-o', 'BatchMode=yes', '-i', key!], password: false };
    default:
      return { options: [...common, '-o', 'PreferredAuthentications=publickey', '-o', 'BatchMode=yes', '-i', key!], password: false };
  }
}

/** The method `ssh -v` reports for the login ("password", "publickey", …), if it logged in. */
export function loggedInWith(stderr: string): string | undefined {
  return /Authenticated to .* using "([^"]+)"/.exec(stderr)?.[1];
}

/** Whether `ssh -v` offered the given key file and the server refused it before the login. */
export function keyRefused(stderr: string, keyFile: string): boolean {
  const offered = stderr.indexOf(`Offering public key: ${keyFile}`);
  return offered >= 0 && !stderr.includes('Server accepts key') && /Authentications that can continue/.test(stderr.slice(offered));
}

/** Bytes from OpenSSH's listing, where it prints bytes that are not valid UTF-8 as `\ooo`. */
export function unvis(out: Buffer): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < out.length; i++) {
    const octal = out[i] === 0x5c ? /^[0-7]{3}/.exec(out.subarray(i + 1, i + 4).toString('latin1')) : null;
    if (octal) {
      bytes.push(parseInt(octal[0], 8));
      i += 3;
    } else {
      bytes.push(out[i]!);
    }
  }
  return Buffer.from(bytes);
}
