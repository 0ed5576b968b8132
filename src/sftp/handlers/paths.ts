/** Requests on a path: STAT, LSTAT, SETSTAT, REMOVE, RENAME, REALPATH, READLINK and SYMLINK. */
import type { RequestContext } from '../context.js';
import type { Reply } from '../reply-order.js';
import { fromClient, type WireAttrs } from '../attrs.js';
import { linkAndTarget } from '../symlink-order.js';
import { setAttributes } from '../set-attrs.js';
import { checkName, nameOf, type Path } from '../virtual-path.js';
import * as reply from '../replies.js';

export async function stat(c: RequestContext, id: number, p: Path): Promise<Reply> {
  return reply.attrs(c.sftp, id, await c.fs.stat(c.path(p)));
}

export async function lstat(c: RequestContext, id: number, p: Path): Promise<Reply> {
  return reply.attrs(c.sftp, id, await c.fs.lstat(c.path(p)));
}

export async function setstat(c: RequestContext, id: number, p: Path, attrs: Partial<WireAttrs>): Promise<Reply> {
  const path = c.path(p);
  await setAttributes(c, path, fromClient(attrs), (a) => c.fs.setstat(path, a));
  return reply.ok(c.sftp, id);
}

export async function remove(c: RequestContext, id: number, p: Path): Promise<Reply> {
  const path = c.path(p);
  await c.log.mutation({ event: 'remove', path }, c.fs.remove(path));
  return reply.ok(c.sftp, id);
}

/** SFTP v3 RENAME never replaces an existing file (posix-rename@openssh.com does). */
export async function rename(c: RequestContext, id: number, from: Path, to: Path): Promise<Reply> {
  const [a, b] = [c.path(from), c.path(to)];
  await c.log.mutation({ event: 'rename', from: a, to: b, overwrite: false }, c.fs.rename(a, b, false));
  return reply.ok(c.sftp, id);
}

export async function realpath(c: RequestContext, id: number, p: Path): Promise<Reply> {
  return reply.pathName(c.sftp, id, await c.fs.realpath(c.path(p)));
}

export async function readlink(c: RequestContext, id: number, p: Path): Promise<Reply> {
  return reply.pathName(c.sftp, id, await c.fs.readlink(c.path(p)));
}

/** Which argument is the link depends on the client (symlink-order.ts); the target is kept verbatim. */
export async function symlink(c: RequestContext, id: number, first: Path, second: Path): Promise<Reply> {
  const exists = (p: string) => c.fs.lstat(c.path(p)).then(() => true, () => false);
  const order = await linkAndTarget(c.symlinkOrder, nameOf(first), nameOf(second), exists);
  const path = c.path(order.link);
  checkName(order.target, 'symlink target');
  await c.log.mutation({ event: 'symlink', path, target: order.target }, c.fs.symlink(order.target, path));
  return reply.ok(c.sftp, id);
}
