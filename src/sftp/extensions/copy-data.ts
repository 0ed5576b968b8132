/**
 * copy-data: a server-side copy between two open handles (sftp's `cp`), as OpenSSH's sftp-server
 * does it: the source open for reading, the target for writing, never a file onto itself.
 */
import type { RequestContext } from '../context.js';
import type { FileHandle } from '../handles.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import { statusOf } from '../status.js';
import { checkOffset } from '../virtual-path.js';
import { SftpStatusError } from '../../errors.js';
import * as reply from '../replies.js';

interface Copy {
  src: FileHandle;
  readOffset: number;
  /** 0: to end of file. */
  length: number;
  dst: FileHandle;
  writeOffset: number;
}

export async function copyData(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  const req: Copy = { src: c.handles.file(r.bytes()), readOffset: r.u64(), length: r.u64(), dst: c.handles.file(r.bytes()), writeOffset: r.u64() };
  const { src, dst } = req;
  checkOffset(req.readOffset, req.length);
  checkOffset(req.writeOffset, req.length);
  if (!src.stats.flags.read) throw new SftpStatusError('PERMISSION_DENIED', undefined, 'copy-data source not open for reading');
  if (!dst.stats.flags.write) throw new SftpStatusError('PERMISSION_DENIED', undefined, 'copy-data target not open for writing');
  const toCopy = await bytesToCopy(req);
  const copied = await copy(c, req, toCopy);
  src.stats.read(req.readOffset, copied);
  dst.stats.wrote(req.writeOffset, copied);
  c.log.emit({ event: 'copy', from: src.path, to: dst.path, bytes: copied, ok: true });
  return reply.ok(c.sftp, id);
}

/** Length 0 means "to end of file": the end as it is now, not as the copy moves it. */
async function bytesToCopy({ src, dst, readOffset, length }: Copy): Promise<number> {
  const [sst, dstat] = await Promise.all([src.file.fstat(), dst.file.fstat()]);
  // As OpenSSH: no copying a file onto itself (a copy to end of file would chase its own tail).
  if (src === dst || (sst.ino !== undefined && sst.ino === dstat.ino && sst.dev === dstat.dev))
    throw new SftpStatusError('FAILURE', undefined, 'copy-data onto the file it reads');
  return length === 0 ? Math.max(0, sst.size - readOffset) : length;
}

/** A failed copy marks the target's transfer and is recorded before it reaches the client. */
async function copy(c: RequestContext, { src, dst, readOffset, writeOffset }: Copy, toCopy: number): Promise<number> {
  try {
    return toCopy === 0 ? 0 : await src.file.copyTo(dst.file, readOffset, toCopy, writeOffset);
  } catch (e) {
    const st = statusOf(e);
    dst.stats.failed(st.name, st.message, st.cause);
    c.log.emit({ event: 'copy', from: src.path, to: dst.path, bytes: 0, ok: false, sftpStatus: st.name, error: st.cause });
    throw e;
  }
}
