/** home-directory: the user's start directory (their "home" inside the root); nobody else's. */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import { SftpStatusError } from '../../errors.js';
import * as reply from '../replies.js';

export async function homeDirectory(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  const who = r.string();
  if (who !== '' && who !== c.options.user) throw new SftpStatusError('FAILURE', undefined, `home-directory of another user (${who})`);
  return reply.pathName(c.sftp, id, c.options.startDirectory);
}
