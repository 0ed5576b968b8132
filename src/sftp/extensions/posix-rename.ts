/** posix-rename@openssh.com: rename(2), replacing the target if it exists (RENAME never does). */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import * as reply from '../replies.js';

export async function posixRename(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  const [a, b] = [c.path(r.name()), c.path(r.name())];
  await c.log.mutation({ event: 'rename', from: a, to: b, overwrite: true }, c.fs.rename(a, b, true));
  return reply.ok(c.sftp, id);
}
