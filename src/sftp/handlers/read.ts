/**
 * READ: clamped to OpenSSH's 255 KiB, admitted by the session's READ budget (read-budget.ts),
 * read into a pooled buffer with room for the DATA header, held back to the bandwidth limits
 * (throttle.ts), and sent from that buffer in place.
 */
import type { RequestContext } from '../context.js';
import type { FileHandle } from '../handles.js';
import type { Reply } from '../reply-order.js';
import type { Release } from '../read-budget.js';
import { DATA_HEADER, MAX_READ } from '../read-buffers.js';
import { statusOf } from '../status.js';
import { checkOffset } from '../virtual-path.js';
import { ConnectionDrop, SftpStatusError } from '../../errors.js';

export async function read(c: RequestContext, id: number, handle: Buffer, offset: number, len: number): Promise<Reply> {
  const h = c.handles.file(handle);
  checkOffset(offset, 0);
  const want = Math.max(0, Math.min(len, MAX_READ));
  const release = await c.reads.reserve(want);
  const buf = c.reads.take();
  const n = await fill(c, h, offset, buf.subarray(DATA_HEADER, DATA_HEADER + want)).catch((e: unknown) => {
    c.reads.give(buf);
    release();
    throw e;
  });
  if (n === 0) {
    c.reads.give(buf);
    release();
    throw new SftpStatusError('EOF');
  }
  // Charged for what was read (not what was asked: reads past the end cost nothing), before it is sent.
  const admitted = c.throttle.admit('download', n);
  if (admitted) await admitted;
  h.stats.read(offset, n);
  c.totals.bytesOut += n;
  return sendData(c, id, buf, n, release);
}

/** Reads at `offset`; a failure marks the transfer, unless the session is going away. */
async function fill(c: RequestContext, h: FileHandle, offset: number, into: Buffer): Promise<number> {
  try {
    // Let through because the session closed: nobody is left to read the data.
    if (c.state.ending) throw new SftpStatusError('CONNECTION_LOST', undefined, 'session closed');
    return await c.heads.read(h, offset, into);
  } catch (e) {
    const st = statusOf(e);
    // A dropped connection is not a failed read: the transfer ends up `incomplete`.
    if (!(e instanceof ConnectionDrop) && !c.state.ending) h.stats.failed(st.name, st.message);
    throw e;
  }
}

/** The reservation ends when the reply is handed to ssh2 (from then on outgoingBytes() counts it). */
function sendData(c: RequestContext, id: number, buf: Buffer, n: number, release: Release): Reply {
  return () => {
    try {
      c.reads.send(id, buf, n);
    } finally {
      release();
    }
  };
}
