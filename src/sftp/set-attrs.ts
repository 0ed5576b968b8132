/** SETSTAT, FSETSTAT and lsetstat@openssh.com: one way to change attributes, and one record of it. */
import type { SetAttrs } from '../fs/file-system.js';
import type { RequestContext } from './context.js';
import { withoutOwnership } from './owner.js';

type Changes = { mode?: string; size?: number; atime?: number; mtime?: number };

/** Applies the client's attributes to `path` through `apply`; uid/gid only as they already are. */
export function setAttributes(c: RequestContext, path: string, requested: SetAttrs, apply: (a: SetAttrs) => Promise<void>): Promise<void> {
  const a = withoutOwnership(requested);
  return c.log.mutation({ event: 'setstat', path, changes: describe(a) }, apply(a));
}

/** What the `setstat` record shows: the mode in octal, as people write it. */
function describe(a: SetAttrs): Changes {
  const out: Changes = {};
  if (a.mode !== undefined) out.mode = '0' + (a.mode & 0o777).toString(8);
  if (a.size !== undefined) out.size = a.size;
  if (a.atime !== undefined) out.atime = a.atime;
  if (a.mtime !== undefined) out.mtime = a.mtime;
  return out;
}
