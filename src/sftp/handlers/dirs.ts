/** OPENDIR, READDIR, MKDIR and RMDIR. */
import type { FileStat } from '../../fs/file-system.js';
import { STAGING_PREFIX } from '../staged-upload.js';
import type { RequestContext } from '../context.js';
import type { DirHandle } from '../handles.js';
import type { Reply } from '../reply-order.js';
import { fromClient, longname, toWire, type WireAttrs } from '../attrs.js';
import { idNames } from '../owner.js';
import { SftpStatusError } from '../../errors.js';
import * as reply from '../replies.js';
import type { Path } from '../virtual-path.js';

/**
 * Entries per READDIR reply. OpenSSH sends 100; 256 cuts the round trips of a long listing by 2.5×
 * and stays under the client's 256 KiB message limit (an entry is at most ~650 bytes: a 255-byte
 * name twice, in the name and the longname, plus attributes).
 */
const READDIR_BATCH = 256;

export async function opendir(c: RequestContext, id: number, p: Path): Promise<Reply> {
  const path = c.path(p);
  const dir = await c.fs.opendir(path);
  return reply.handle(c.sftp, id, await c.handles.add({ kind: 'dir', path, dir }));
}

export async function readdir(c: RequestContext, id: number, handle: Buffer): Promise<Reply> {
  const h = c.handles.dir(handle);
  const { owner, group } = idNames(c.options);
  const now = Date.now();
  // Entries that vanished between listing and stat are skipped; a batch of only those is not the end.
  for (;;) {
    const entries = await nextBatch(h);
    const names = entries
      // Uploads still being written (staged-upload.ts) are not there yet for clients.
      .filter((e): e is { name: string; stat: FileStat } => e.stat !== null && !e.name.startsWith(STAGING_PREFIX))
      .map((e) => ({ filename: e.name, longname: longname(e.name, e.stat, owner, group, now), attrs: toWire(e.stat) }));
    if (names.length > 0) return reply.names(c.sftp, id, names);
  }
}

/** The batch read ahead, or the next one; a full batch starts reading the one after it. */
async function nextBatch(h: DirHandle) {
  // Taken before waiting: pipelined READDIRs each get their own batch, in request order.
  const ahead = h.ahead;
  h.ahead = undefined;
  const entries = await (ahead ?? h.dir.next(READDIR_BATCH));
  if (entries.length === 0) throw new SftpStatusError('EOF');
  if (entries.length === READDIR_BATCH && h.ahead === undefined) {
    // A failure of the read-ahead reaches the client with the next READDIR, as it would have.
    h.ahead = h.dir.next(READDIR_BATCH);
    h.ahead.catch(() => undefined);
  }
  return entries;
}

export async function mkdir(c: RequestContext, id: number, p: Path, attrs: Partial<WireAttrs>): Promise<Reply> {
  const path = c.path(p);
  const mode = ((fromClient(attrs).mode ?? 0o777) & 0o777) & ~c.options.umask;
  await c.log.mutation({ event: 'mkdir', path, mode: '0' + mode.toString(8) }, c.fs.mkdir(path, mode));
  return reply.ok(c.sftp, id);
}

export async function rmdir(c: RequestContext, id: number, p: Path): Promise<Reply> {
  const path = c.path(p);
  await c.log.mutation({ event: 'rmdir', path }, c.fs.rmdir(path));
  return reply.ok(c.sftp, id);
}
