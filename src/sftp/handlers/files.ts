/** OPEN, CLOSE, FSTAT and FSETSTAT: a file handle's life around its READs and WRITEs (read.ts, write.ts). */
import { writesFile, type OpenFlags } from '../../fs/file-system.js';
import type { RequestContext, RunOptions } from '../context.js';
import type { FileHandle } from '../handles.js';
import type { Reply } from '../reply-order.js';
import { fromClient, type WireAttrs } from '../attrs.js';
import { TransferStats } from '../transfer.js';
import { statusOf } from '../status.js';
import { SftpStatusError } from '../../errors.js';
import { discard, lstatOrNull, publish, stagesUpload, stagingPath, type Staged } from '../staged-upload.js';
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
  const existing = c.options.atomicUploads && flags.write ? await lstatOrNull(c.fs, path) : undefined;
  if (existing !== undefined && stagesUpload(flags, existing)) return openStaged(c, id, path, flags, existing?.mode ?? mode);
  const file = await c.fs.open(path, flags, mode);
  const stats = new TransferStats(path, flags, file.stat.size, c.options.hashUploads && flags.write);
  const handle = await c.handles.add({ kind: 'file', path, file, stats, head: c.heads.stamp(file) });
  return reply.handle(c.sftp, id, handle);
}

/** A new upload, written under a hidden name (staged-upload.ts); a replaced file's mode is kept. */
async function openStaged(c: RequestContext, id: number, final: string, flags: OpenFlags, mode: number): Promise<Reply> {
  const staged: Staged = { temp: stagingPath(final), final, noReplace: flags.excl };
  const file = await c.fs.open(final, { ...flags, creat: true, excl: true, trunc: false }, mode & 0o777, staged.temp);
  const stats = new TransferStats(final, flags, 0, c.options.hashUploads, true);
  try {
    return reply.handle(c.sftp, id, await c.handles.add({ kind: 'file', path: final, file, stats, staged }));
  } catch (e) {
    await discard(c.fs, staged);
    throw e;
  }
}

export async function close(c: RequestContext, id: number, handle: Buffer): Promise<Reply> {
  const h = c.handles.take(handle);
  await c.handles.settled(h);
  if (h.kind === 'dir') await h.dir.close();
  else await closeFile(c, h);
  return reply.ok(c.sftp, id);
}

async function closeFile(c: RequestContext, h: FileHandle): Promise<void> {
  if (h.staged) return closeStaged(c, h, h.staged);
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

/** An atomic upload ends: published under its final name if every write and the close succeeded. */
async function closeStaged(c: RequestContext, h: FileHandle, staged: Staged): Promise<void> {
  try {
    await h.file.close();
    // A failed WRITE already made the transfer an error: the final name is left as it was.
    if (h.stats.errorStatus) throw new SftpStatusError('FAILURE', undefined, 'upload not published: a write failed');
    await publish(c.fs, staged);
  } catch (e) {
    await discard(c.fs, staged);
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
