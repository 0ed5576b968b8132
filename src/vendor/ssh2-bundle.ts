/**
 * Loads ssh2 1.17.0 with patches/ssh2+1.17.0.patch applied, bundled at build time into
 * dist/vendor/ssh2.cjs (scripts/bundle-ssh2.mjs) and reached through package.json "imports"
 * (`#ssh2`): an install patches nothing, and a consumer's own ssh2 is never the one used.
 * Below every layer (it imports nothing of the project) so that src/parse/ can use ssh2's key
 * parser; ssh2's internals are typed and reached in src/ssh/ssh2.ts only.
 */
import { createRequire } from 'node:module';
import type * as Ssh2 from 'ssh2';

/** ssh2's lib/protocol/constants.js: the algorithm names it implements. */
export interface Ssh2Constants {
  SUPPORTED_KEX: readonly string[];
  SUPPORTED_SERVER_HOST_KEY: readonly string[];
  SUPPORTED_CIPHER: readonly string[];
  SUPPORTED_MAC: readonly string[];
  /** Added by the patch: whether this Node can run mlkem768x25519-sha256. */
  mlkem768x25519Supported?: boolean;
}

/** The bundle's exports (scripts/bundle-ssh2.mjs writes its entry). */
export interface Ssh2Bundle {
  ssh2: typeof Ssh2;
  crypto: { bindingAvailable?: boolean; isOutPacket?: unknown; releaseOutPacket?: unknown };
  constants: Ssh2Constants;
  /** lib/protocol/mlkem768x25519.js, added by the patch (typed in src/ssh/kex/mlkem768x25519.ts). */
  mlkem768x25519: unknown;
  /** lib/protocol/SFTP.js's SFTP class (the probe drives one in server mode). */
  SFTP: new (client: unknown, chanInfo: unknown, cfg: { server: boolean }) => Ssh2.SFTPWrapper;
  /** lib/protocol/Protocol.js's class. */
  Protocol: { prototype: Record<string, unknown> };
  patch: { ssh2: string; sha256: string };
}

function load(): Ssh2Bundle {
  try {
    return createRequire(import.meta.url)('#ssh2') as Ssh2Bundle;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(`sftp-chroot's bundled ssh2 (dist/vendor/ssh2.cjs) cannot be loaded: ${why}. In a checkout run \`npm run build\`; an installed package is damaged: reinstall it.`);
  }
}

export const bundle: Ssh2Bundle = load();
