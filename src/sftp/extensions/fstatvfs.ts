/** fstatvfs@openssh.com: statvfs of an open file's filesystem. */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import { vfsReply } from './statvfs.js';

export async function fstatvfs(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  return vfsReply(c.sftp, id, await c.handles.file(r.bytes()).file.fstatvfs());
}
