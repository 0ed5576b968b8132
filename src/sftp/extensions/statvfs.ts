/** statvfs@openssh.com: the filesystem's statvfs(2) for a path, eleven uint64 fields as OpenSSH sends them. */
import type { SFTPWrapper } from 'ssh2';
import type { VfsStat } from '../../fs/file-system.js';
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import { WireWriter, type WireReader } from '../attrs.js';
import * as reply from '../replies.js';

export async function statvfs(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  return vfsReply(c.sftp, id, await c.fs.statvfs(c.path(r.name())));
}

/** The reply of statvfs and fstatvfs@openssh.com. */
export function vfsReply(sftp: SFTPWrapper, id: number, v: VfsStat): Reply {
  const w = new WireWriter().u64(v.bsize).u64(v.frsize).u64(v.blocks).u64(v.bfree).u64(v.bavail).u64(v.files);
  return reply.extended(sftp, id, w.u64(v.ffree).u64(v.favail).u64(v.fsid).u64(v.flag).u64(v.namemax).toBuffer());
}
