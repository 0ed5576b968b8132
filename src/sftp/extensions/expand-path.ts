/** expand-path@openssh.com: REALPATH that also expands "~" (sftp's `cd ~/x`). */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import type { WireReader } from '../attrs.js';
import { SftpStatusError } from '../../errors.js';
import * as reply from '../replies.js';

export async function expandPath(c: RequestContext, id: number, r: WireReader): Promise<Reply> {
  return reply.pathName(c.sftp, id, await c.fs.realpath(expandTilde(c, r.name())));
}

/** "~" and "~/x" are the start directory; "~user" only for oneself. */
function expandTilde(c: RequestContext, p: string): string {
  const home = c.options.startDirectory;
  if (p === '~' || p.startsWith('~/')) return c.path(home + p.slice(1));
  if (!p.startsWith('~')) return c.path(p);
  const [who, ...rest] = p.slice(1).split('/');
  if (who !== c.options.user) throw new SftpStatusError('NO_SUCH_FILE', undefined, `expand-path of another user's home (~${who ?? ''})`);
  return c.path([home, ...rest].join('/'));
}
