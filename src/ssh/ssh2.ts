/**
 * The one doorway to ssh2. The server runs ssh2 1.17.0 with patches/ssh2+1.17.0.patch applied,
 * bundled at build time into dist/vendor/ssh2.cjs (scripts/bundle-ssh2.mjs) and reached through
 * package.json "imports" (`#ssh2`): an install patches nothing, and a consumer's own ssh2 (hoisted
 * or not) is never the one the server uses. ssh2's internals the project relies on are reached
 * here and nowhere else; src/ssh/ssh2-probe.ts checks at start that the patched behaviours are in
 * effect. Types: @types/ssh2 plus src/ssh/ssh2-ext.d.ts.
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
interface Bundle {
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

function load(): Bundle {
  try {
    return createRequire(import.meta.url)('#ssh2') as Bundle;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(`sftp-chroot's bundled ssh2 (dist/vendor/ssh2.cjs) cannot be loaded: ${why}. In a checkout run \`npm run build\`; an installed package is damaged: reinstall it.`);
  }
}

const bundle = load();

/** ssh2 as the server uses it (patched): Server, utils, … and the Client with the same patches. */
export const ssh2: typeof Ssh2 = bundle.ssh2;
export const ssh2Constants: Ssh2Constants = bundle.constants;
/** The patched lib/protocol/mlkem768x25519.js (typed where it is used). */
export const ssh2Mlkem768x25519: unknown = bundle.mlkem768x25519;
export const ssh2Internals = { SFTP: bundle.SFTP, Protocol: bundle.Protocol, crypto: bundle.crypto, patch: bundle.patch };

/** ssh2's native crypto binding (built by the installed ssh2 at install) doubles throughput. */
export function cryptoBindingAvailable(): boolean {
  return bundle.crypto.bindingAvailable === true;
}
