/**
 * PuTTY's command-line options for a target and an auth cell (psftp and pscp take the same ones).
 * PuTTY tries keyboard-interactive before password whenever the server offers it, so the password
 * cells load a saved session with keyboard-interactive off (AuthKI=0), kept in a private HOME.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuthCell } from './cells.js';
import { keyFileFor } from './keys.js';
import type { Target } from './target.js';

const NO_KI = 'matrix-no-ki';

/** Makes `home`/.putty with the saved session the password cells load. */
export async function puttyHome(home: string): Promise<void> {
  await mkdir(join(home, '.putty/sessions'), { recursive: true });
  await writeFile(join(home, '.putty/sessions', NO_KI), 'AuthKI=0\n');
}

/** Options (before user@host) for a cell; never prompts (-batch), host keys pinned by fingerprint. */
export function puttyOptions(t: Target, cell: AuthCell): string[] {
  const common = ['-batch', ...Object.values(t.hostKeyFingerprints).flatMap((fp) => ['-hostkey', fp]), '-P', String(t.port)];
  const key = keyFileFor(t.keys, cell, 'ppk');
  switch (cell) {
    case 'password':
      return ['-load', NO_KI, ...common, '-pw', t.password];
    case 'keyboard-interactive':
      return [...common, '-pw', t.password];
    case 'wrongkey-then-password':
      return ['-load', NO_KI, ...common, '-i', key!, '-pw', t.password];
    default:
      return [...common, '-i', key!];
  }
}

/** The method PuTTY's event log (-v) shows for a granted login, if any. */
export function puttyLoggedInWith(log: string): string | undefined {
  if (!log.includes('Access granted')) return undefined;
  if (log.includes('Sent public key signature')) return 'publickey';
  if (log.includes('Sent password')) return 'password';
  if (log.includes('Attempting keyboard-interactive authentication')) return 'keyboard-interactive';
  return 'unknown';
}

/** The key was offered and refused before the password was sent. */
export function puttyKeyRefused(log: string): boolean {
  const refused = log.indexOf('Server refused our key');
  return refused >= 0 && refused < log.indexOf('Sent password');
}
