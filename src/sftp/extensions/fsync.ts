/** fsync@openssh.com: fsync(2) of an open file, so the client knows its upload is on the disk. */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import * as reply from '../replies.js';

export async function fsync(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  await c.handles.file(r.bytes()).file.fsync();
  return reply.ok(c.sftp, id);
}
