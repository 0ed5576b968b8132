/** lsetstat@openssh.com: SETSTAT without following a final symlink. */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import { setAttributes } from '../set-attrs.js';
import * as reply from '../replies.js';

export async function lsetstat(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  const path = c.path(r.name());
  await setAttributes(c, path, r.attrs(), (a) => c.fs.lsetstat(path, a));
  return reply.ok(c.sftp, id);
}
