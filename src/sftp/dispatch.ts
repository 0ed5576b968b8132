/**
 * Each request's handler, by its name in the table (requests.ts). bind() wires ssh2's events and
 * EXTENDED names to them, from the table too.
 */
import type { SFTPWrapper } from 'ssh2';
import { PACKET_REQUESTS, REQUEST_NAMES, extensionRequest, type RequestName } from './requests.js';
import type { Arrive, Handler, Serve } from './context.js';
import { WireReader } from './attrs.js';
import { open, openArrives, close, fstat, fsetstat } from './handlers/files.js';
import { read } from './handlers/read.js';
import { write, writeArrives } from './handlers/write.js';
import { opendir, readdir, mkdir, rmdir } from './handlers/dirs.js';
import { stat, lstat, setstat, remove, rename, realpath, readlink, symlink } from './handlers/paths.js';
import { posixRename } from './extensions/posix-rename.js';
import { statvfs } from './extensions/statvfs.js';
import { fstatvfs } from './extensions/fstatvfs.js';
import { hardlink } from './extensions/hardlink.js';
import { fsync } from './extensions/fsync.js';
import { lsetstat } from './extensions/lsetstat.js';
import { limits } from './extensions/limits.js';
import { expandPath } from './extensions/expand-path.js';
import { copyData } from './extensions/copy-data.js';
import { homeDirectory } from './extensions/home-directory.js';
import { usersGroupsById } from './extensions/users-groups-by-id.js';

/** What serves each request; the compiler insists on one for every row of the table. */
const SERVE: { readonly [N in RequestName]: Serve } = {
  open, close, read, write, lstat, fstat, setstat, fsetstat, opendir, readdir, remove, mkdir, rmdir,
  realpath, stat, rename, readlink, symlink, 'posix-rename': posixRename, statvfs, fstatvfs, hardlink,
  fsync, lsetstat, limits, 'expand-path': expandPath, 'copy-data': copyData,
  'home-directory': homeDirectory, 'users-groups-by-id': usersGroupsById,
};

/** Requests the runner looks at as they arrive, before the policy (RunOptions). */
const ARRIVE: { readonly [N in RequestName]?: Arrive } = { open: openArrives, write: writeArrives };

export const HANDLERS = Object.fromEntries(
  REQUEST_NAMES.map((name) => [name, { serve: SERVE[name], arrive: ARRIVE[name] }]),
) as { readonly [N in RequestName]: Handler };

/** Runs a request: its name, its id, and the fields its handler takes after (context, id). */
export type Run = (request: RequestName, id: number, fields: unknown[]) => void;

/** Sends each SFTP packet and each known EXTENDED request to `run`; an unknown extension to `unknown`. */
export function bind(sftp: SFTPWrapper, run: Run, unknown: (id: number, wireName: string) => void): void {
  for (const [event, request] of PACKET_REQUESTS) {
    sftp.on(event as 'OPEN', (id: number, ...fields: unknown[]) => run(request, id, fields));
  }
  sftp.on('EXTENDED', (id: number, wireName: string, data: Buffer | undefined) => {
    const request = extensionRequest(wireName);
    if (request === undefined) return unknown(id, wireName);
    // Decoded inside the handler: a short payload is a BAD_MESSAGE reply, in order.
    run(request, id, [new WireReader(data ?? Buffer.alloc(0))]);
  });
}
