/** users-groups-by-id@openssh.com: names for uids and gids; only the server's own have one (the user's). */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import { WireWriter } from '../attrs.js';
import { SERVER_GID, SERVER_UID } from '../owner.js';
import { SftpStatusError } from '../../errors.js';
import * as reply from '../replies.js';

export async function usersGroupsById(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  const uids = ids(r.bytes());
  const gids = ids(r.bytes());
  const users = new WireWriter();
  for (const u of uids) users.string(u === SERVER_UID ? c.options.ownerName : '');
  const groups = new WireWriter();
  for (const g of gids) groups.string(g === SERVER_GID ? c.options.groupName : '');
  return reply.extended(c.sftp, id, new WireWriter().string(users.toBuffer()).string(groups.toBuffer()).toBuffer());
}

/** A list of uint32 ids packed in one string. */
function ids(b: Buffer): number[] {
  if (b.length % 4 !== 0) throw new SftpStatusError('BAD_MESSAGE', undefined, 'id list not a multiple of 4 bytes');
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 4) out.push(b.readUInt32BE(i));
  return out;
}
