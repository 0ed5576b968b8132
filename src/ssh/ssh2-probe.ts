/**
 * Proves, before the server starts, that the ssh2 it loaded is the patched one: each patched
 * behaviour the server relies on is checked, the SFTP ones by driving a server-mode SFTP object in
 * memory (no socket, well under a millisecond), the transport ones by the functions the patch adds.
 * A server whose ssh2 lost a patch would corrupt uploads or hang clients; it refuses to start and
 * names what is missing instead.
 */
import { ssh2Constants, ssh2Internals } from './ssh2.js';
import { mlkem768x25519Supported } from './kex/mlkem768x25519.js';

interface Check {
  name: string;
  ok(): boolean;
}

/** A server-mode SFTP object whose replies are captured instead of sent. */
function harness(): { sftp: Record<string, unknown> & { push(b: Buffer): unknown; on(e: string, f: (...a: unknown[]) => void): unknown }; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const client = { _protocol: { _remoteIdentRaw: 'SSH-2.0-probe', channelData: (_id: number, data: Buffer) => sent.push(Buffer.from(data)) } };
  const side = { id: 0, window: 1 << 21, packetSize: 1 << 15, state: 'open' };
  const sftp = new ssh2Internals.SFTP(client, { type: 'sftp', incoming: { ...side }, outgoing: { ...side } }, { server: true });
  return { sftp: sftp as unknown as ReturnType<typeof harness>['sftp'], sent };
}

function packet(type: number, ...fields: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.of(type), ...fields]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const str = (b: Buffer | string) => Buffer.concat([u32(Buffer.byteLength(b)), Buffer.from(b)]);

/** Runs INIT, then `steps` on a fresh server-mode SFTP object; true if it behaved. */
function sftpCheck(steps: (h: ReturnType<typeof harness>) => boolean): () => boolean {
  return () => {
    const h = harness();
    h.sftp['serverExtensions'] = [['probe@sftp-chroot', '1']];
    h.sftp['namesAsBuffers'] = true;
    h.sftp.push(packet(1, u32(3)));
    return steps(h);
  };
}

const CHECKS: Check[] = [
  {
    name: 'VERSION lists the server extensions (serverExtensions)',
    ok: sftpCheck((h) => h.sent.some((b) => b[4] === 2 && b.includes(Buffer.from('probe@sftp-chroot')))),
  },
  {
    name: 'request paths arrive as bytes (namesAsBuffers)',
    ok: sftpCheck((h) => {
      let got: unknown;
      h.sftp.on('STAT', (_id: unknown, path: unknown) => (got = path));
      h.sftp.push(packet(17, u32(7), str(Buffer.from([0x2f, 0xbf]))));
      return Buffer.isBuffer(got) && got.equals(Buffer.from([0x2f, 0xbf]));
    }),
  },
  {
    name: 'input pauses and resumes at a packet boundary (pauseInput/resumeInput: pacing)',
    ok: sftpCheck((h) => {
      const seen: unknown[] = [];
      h.sftp.on('STAT', (id: unknown) => seen.push(id));
      (h.sftp['pauseInput'] as () => void)();
      h.sftp.push(packet(17, u32(8), str('/a')));
      const whilePaused = seen.length;
      (h.sftp['resumeInput'] as () => void)();
      return whilePaused === 0 && seen.length === 1 && seen[0] === 8;
    }),
  },
  {
    name: 'an unknown packet type is answered OP_UNSUPPORTED, not fatal',
    ok: sftpCheck((h) => {
      const before = h.sent.length;
      h.sftp.push(packet(99, u32(9)));
      const reply = h.sent.slice(before).find((b) => b[4] === 101);
      return reply !== undefined && reply.readUInt32BE(5) === 9 && reply.readUInt32BE(9) === 8;
    }),
  },
  {
    name: 'EXTENDED_REPLY, DATA in place and NAME with raw bytes can be sent',
    ok: sftpCheck((h) => {
      const before = h.sent.length;
      (h.sftp['extendedReply'] as (id: number, b: Buffer) => void)(10, Buffer.from('x'));
      const buf = Buffer.alloc(13 + 2);
      (h.sftp['dataInPlace'] as (id: number, b: Buffer, n: number) => boolean)(11, buf, 2);
      (h.sftp['name'] as (id: number, n: unknown[]) => void)(12, [{ filename: Buffer.from([0xbf]), longname: Buffer.from([0xbf]), attrs: {} }]);
      const out = h.sent.slice(before);
      return out.some((b) => b[4] === 201) && out.some((b) => b[4] === 103) && out.some((b) => b[4] === 104 && b.includes(Buffer.from([0, 0, 0, 1, 0xbf])));
    }),
  },
  {
    name: 'outgoing backlog and pooled WRITE buffers are reported (outgoingBytes, releaseWriteData, onPayloadSent)',
    ok: () => ['outgoingBytes', 'releaseWriteData', 'pendingInputBytes'].every((f) => typeof (ssh2Internals.SFTP.prototype as unknown as Record<string, unknown>)[f] === 'function'),
  },
  {
    name: 'transport: reused input buffers, DISCONNECT with a description (Protocol)',
    ok: () => {
      const p = ssh2Internals.Protocol.prototype;
      return typeof p['setTransientInput'] === 'function' && typeof p['isTransient'] === 'function' && typeof p['disconnect'] === 'function' && (p['disconnect'] as (...a: unknown[]) => unknown).length === 2;
    },
  },
  {
    name: 'transport: pooled outgoing packets (crypto)',
    ok: () => typeof ssh2Internals.crypto.isOutPacket === 'function' && typeof ssh2Internals.crypto.releaseOutPacket === 'function',
  },
  {
    name: 'key exchange mlkem768x25519-sha256',
    ok: () => !mlkem768x25519Supported() || ssh2Constants.SUPPORTED_KEX.includes('mlkem768x25519-sha256'),
  },
  {
    name: 'the bundle carries the patch stamp (ssh2 1.17.0)',
    ok: () => ssh2Internals.patch?.ssh2 === '1.17.0' && /^[0-9a-f]{64}$/.test(ssh2Internals.patch.sha256),
  },
];

let result: string[] | undefined;

/** The patched behaviours that are NOT in effect (empty: all are). Checked once per process. */
export function ssh2PatchProblems(): string[] {
  result ??= CHECKS.filter((c) => {
    try {
      return !c.ok();
    } catch {
      return true;
    }
  }).map((c) => c.name);
  return result;
}

/** Throws, naming every missing behaviour, unless the loaded ssh2 is the patched one. */
export function assertSsh2Patched(): void {
  const problems = ssh2PatchProblems();
  if (problems.length)
    throw new Error(`the bundled ssh2 (dist/vendor/ssh2.cjs) is not patched as this server needs: ${problems.join('; ')}. Reinstall sftp-chroot (in a checkout: npm ci && npm run build)`);
}
