/** OPEN, CLOSE, FSTAT and FSETSTAT: a file handle's life around its READs and WRITEs (read.ts, write.ts). */
import { writesFile, type OpenFlags } from '../../fs/file-system.js';
import type { RequestContext, RunOptions } from '../context.js';
import type { FileHandle } from '../handles.js';
import type { Reply } from '../reply-order.js';
import { fromClient, type WireAttrs } from '../attrs.js';
import { TransferStats } from '../transfer.js';
import { statusOf } from '../status.js';
import { setAttributes } from '../set-attrs.js';
import * as reply from '../replies.js';
import type { Path } from '../virtual-path.js';

/** SSH_FXF_* bits (draft-02 §6.3). */
export function openFlags(pflags: number): OpenFlags {
  return {
    read: (pflags & 0x01) !== 0,
    write: (pflags & 0x02) !== 0,
    append: (pflags & 0x04) !== 0,
    creat: (pflags & 0x08) !== 0,
    trunc: (pflags & 0x10) !== 0,
    excl: (pflags & 0x20) !== 0,
  };
}

/** An OPEN changes files when its flags say so (read-only users, head-cache.ts). */
export function openArrives(_c: RequestContext, _p: Path, pflags: number): RunOptions {
  return { writes: writesFile(openFlags(pflags)) };
}

export async function open(c: RequestContext, id: number, filename: Path, pflags: number, attrs: Partial<WireAttrs>): Promise<Reply> {
  const flags = openFlags(pflags);
  const path = c.path(filename);
  const mode = ((fromClient(attrs).mode ?? 0o666) & 0o777) & ~c.options.umask;
  const file = await c.fs.open(path, flags, mode);
  const stats = new TransferStats(path, flags, file.stat.size, c.options.hashUploads && flags.write);
  const handle = await c.handles.add({ kind: 'file', path, file, stats, head: c.heads.stamp(file) });
  return reply.handle(c.sftp, id, handle);
}

export async function close(c: RequestContext, id: number, handle: Buffer): Promise<Reply> {
  const h = c.handles.take(handle);
  await c.handles.settled(h);
  if (h.kind === 'dir') await h.dir.close();
  else await closeFile(c, h);
  return reply.ok(c.sftp, id);
}

async function closeFile(c: RequestContext, h: FileHandle): Promise<void> {
  if (!writesFile(h.stats.flags)) {
    // Nothing written, nothing to flush: close(2) cannot report anything the client could act
    // on, so the reply does not wait for a trip to the thread pool.
    c.log.transfer(h.stats, 'complete');
    h.file.close().catch(() => undefined);
    return;
  }
  try {
    await h.file.close();
  } catch (e) {
    const st = statusOf(e);
    h.stats.failed(st.name, st.message);
    c.log.transfer(h.stats, 'complete');
    throw e;
  }
  c.log.transfer(h.stats, 'complete');
}

export async function fstat(c: RequestContext, id: number, handle: Buffer): Promise<Reply> {
  return reply.attrs(c.sftp, id, await c.handles.file(handle).file.fstat());
}

export async function fsetstat(c: RequestContext, id: number, handle: Buffer, attrs: Partial<WireAttrs>): Promise<Reply> {
  const h = c.handles.file(handle);
  await setAttributes(c, h.path, fromClient(attrs), (a) => h.file.fsetstat(a));
  return reply.ok(c.sftp, id);
}
