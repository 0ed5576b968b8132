/** WRITE: into the file at the client's offset; the bytes are hashed in arrival order (transfer.ts). */
import type { RequestContext, RunOptions } from '../context.js';
import type { Reply } from '../reply-order.js';
import { statusOf } from '../status.js';
import { checkOffset } from '../virtual-path.js';
import { ConnectionDrop } from '../../errors.js';
import * as reply from '../replies.js';

/** Looked up on arrival: the handle's transfer becomes `error` whatever fails (policy, offset, disk). */
export function writeArrives(c: RequestContext, handle: Buffer): RunOptions {
  const target = c.handles.peek(handle);
  const onError = (e: unknown) => {
    // A session that is ending leaves the transfer `incomplete`, not `error`.
    if (target?.kind !== 'file' || e instanceof ConnectionDrop || c.state.ending || c.state.closed) return;
    const st = statusOf(e);
    target.stats.failed(st.name, st.message, st.cause);
  };
  return { onError };
}

export async function write(c: RequestContext, id: number, handle: Buffer, offset: number, data: Buffer): Promise<Reply> {
  try {
    const h = c.handles.file(handle);
    checkOffset(offset, data.length);
    h.stats.writing(offset, data);
    // Held in flight until the bandwidth limits admit it: the client is paced (pacing.ts), not refused.
    const admitted = c.throttle.admit('upload', data.length);
    if (admitted) await admitted;
    await h.file.write(offset, data);
    h.stats.wrote(offset, data.length);
    c.totals.bytesIn += data.length;
    return reply.ok(c.sftp, id);
  } finally {
    // The write is done with `data` (and `handle`, a view of the same packet): its buffer
    // may take the next WRITE. Not given back if this never ran: the GC takes it then.
    c.sftp.releaseWriteData(data);
  }
}
