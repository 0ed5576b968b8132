/**
 * The one doorway to ssh2's internals. The bundled, patched ssh2 is loaded by
 * src/vendor/ssh2-bundle.ts; every private member the server relies on (`_sock`, `_protocol`, a
 * channel's `outgoing`, the patched setTransientInput) is read here and nowhere else, so an ssh2
 * upgrade has one place to check. src/ssh/ssh2-probe.ts checks at start that the patched behaviours
 * are in effect. Types: @types/ssh2 plus src/ssh/ssh2-ext.d.ts.
 */
import type { Socket } from 'node:net';
import type * as Ssh2 from 'ssh2';
import { bundle, type Ssh2Constants } from '../vendor/ssh2-bundle.js';

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

/** What the server reads of a server-side Connection's lib/protocol/Protocol.js object. */
export interface TransientInput {
  /** Patched: parse from this shared buffer, copying out what outlives the parse. */
  setTransientInput?(arrayBuffer: ArrayBuffer): void;
}
interface ConnectionInternals {
  _sock?: Socket;
  _protocol?: TransientInput & {
    /** Packets held while a key re-exchange is under way. */
    _queue?: unknown[];
  };
}
interface ChannelInternals {
  _protocol?: { exitStatus(id: number, code: number): void };
  outgoing?: { id: number; state: string };
}

const connectionInternals = (client: Ssh2.Connection) => client as unknown as ConnectionInternals;

/** The socket ssh2 reads this connection from (undefined if ssh2 was handed another stream). */
export function socketOf(client: Ssh2.Connection): Socket | undefined {
  return connectionInternals(client)._sock;
}

/** Packets ssh2 holds back until a key re-exchange completes (sent then, so still owed to the client). */
export function packetsHeldForRekey(client: Ssh2.Connection): number {
  return connectionInternals(client)._protocol?._queue?.length ?? 0;
}

/** The connection's Protocol, as socket-tuning's readIntoSharedBuffer needs it (empty if absent). */
export function transientInputOf(client: Ssh2.Connection): TransientInput {
  return connectionInternals(client)._protocol ?? {};
}

/** Sends exit-status `code` on a channel that is still open; false if it was not (already closing). */
export function sendExitStatus(channel: Ssh2.SFTPWrapper, code: number): boolean {
  const internals = channel as unknown as ChannelInternals;
  if (internals.outgoing?.state !== 'open' || !internals._protocol) return false;
  internals._protocol.exitStatus(internals.outgoing.id, code);
  return true;
}
