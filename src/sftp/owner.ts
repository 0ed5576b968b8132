/** The server's own uid and gid: files it owns show the user's name, and chown is never done. */
import type { SetAttrs } from '../fs/file-system.js';
import { SftpStatusError } from '../errors.js';

/** Read once: process.getuid() is a syscall (~5 µs, 100 ms per 20,000-entry ls -l). */
export const SERVER_UID = process.getuid?.();
export const SERVER_GID = process.getgid?.();

export interface OwnerNames {
  readonly ownerName: string;
  readonly groupName: string;
}

/** For `ls -l` longnames: the configured names for the server's ids, other ids as numbers. */
export function idNames(o: OwnerNames): { owner: (uid: number) => string; group: (gid: number) => string } {
  return {
    owner: (uid) => (uid === SERVER_UID ? o.ownerName : String(uid)),
    group: (gid) => (gid === SERVER_GID ? o.groupName : String(gid)),
  };
}

/** The attributes without uid/gid; a request to change ownership to anything else is refused. */
export function withoutOwnership(a: SetAttrs): SetAttrs {
  const { uid, gid, ...rest } = a;
  if ((uid !== undefined && uid !== SERVER_UID) || (gid !== undefined && gid !== SERVER_GID))
    throw new SftpStatusError('PERMISSION_DENIED', undefined, 'changing ownership is not allowed');
  return rest;
}
