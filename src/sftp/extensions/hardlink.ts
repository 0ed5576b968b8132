/** hardlink@openssh.com: link(2), confined on both sides like every path. */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import * as reply from '../replies.js';

export async function hardlink(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  const [a, b] = [c.path(r.name()), c.path(r.name())];
  await c.log.mutation({ event: 'link', from: a, to: b }, c.fs.link(a, b));
  return reply.ok(c.sftp, id);
}
