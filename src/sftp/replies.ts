/** The answers handlers give, as functions the reply order calls when their turn comes. */
import type { SFTPWrapper } from 'ssh2';
import type { FileStat } from '../fs/file-system.js';
import { STATUS } from '../errors.js';
import { STATUS_MESSAGES } from './status.js';
import { toWire, type WireAttrs } from './attrs.js';
import { wireName } from './names.js';
import type { Reply } from './reply-order.js';

export function ok(sftp: SFTPWrapper, id: number): Reply {
  return () => sftp.status(id, STATUS.OK, STATUS_MESSAGES.OK);
}

export function attrs(sftp: SFTPWrapper, id: number, st: FileStat): Reply {
  return () => sftp.attrs(id, toWire(st));
}

export function handle(sftp: SFTPWrapper, id: number, h: Buffer): Reply {
  return () => sftp.handle(id, h);
}

export function extended(sftp: SFTPWrapper, id: number, data: Buffer): Reply {
  return () => sftp.extendedReply(id, data);
}

export interface NameEntry {
  filename: string;
  longname: string;
  attrs?: WireAttrs;
}

/** A NAME reply; names that are not UTF-8 go out as their original bytes (names.ts). */
export function names(sftp: SFTPWrapper, id: number, entries: NameEntry[]): Reply {
  return () => {
    const wire = entries.map((e) => ({ filename: wireName(e.filename), longname: wireName(e.longname), attrs: e.attrs ?? ({} as WireAttrs) }));
    // ssh2's types say string; the patched name() also sends Buffers as they are.
    sftp.name(id, wire as unknown as Parameters<SFTPWrapper['name']>[1]);
  };
}

/** A NAME reply of one path (REALPATH, READLINK, expand-path, home-directory). */
export function pathName(sftp: SFTPWrapper, id: number, p: string): Reply {
  return names(sftp, id, [{ filename: p, longname: p }]);
}
