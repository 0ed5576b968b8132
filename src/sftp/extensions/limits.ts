/** limits@openssh.com: packet, read and write sizes (OpenSSH's) and how many handles may still open. */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import { WireWriter } from '../attrs.js';
import { MAX_PACKET, MAX_READ } from '../read-buffers.js';
import * as reply from '../replies.js';

export async function limits(c: RequestContext, id: number, _r: WireReader): Promise<Reply> {
  return reply.extended(c.sftp, id, new WireWriter().u64(MAX_PACKET).u64(MAX_READ).u64(MAX_READ).u64(c.handles.free).toBuffer());
}
