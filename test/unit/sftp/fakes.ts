/** A session over a fake ssh2 channel and a FileSystem the test controls; replies are recorded. */
import { EventEmitter } from 'node:events';
import type { SFTPWrapper } from 'ssh2';
import { SftpSession, type SessionOptions } from '../../../src/sftp/session.js';
import { Policy } from '../../../src/sftp/policy.js';
import type { AuditEvent } from '../../../src/audit/events.js';
import type { FileSystem, OpenFile, FileStat } from '../../../src/fs/file-system.js';

export const stat: FileStat = { mode: 0o100644, uid: 0, gid: 0, size: 10, atime: 0, mtime: 0, nlink: 1 };

export interface Sent {
  kind: string;
  id: number;
  arg?: unknown;
  message?: string;
}

export function fakeFile(over: Partial<OpenFile> = {}): OpenFile {
  return {
    stat,
    read: async (_position, into) => Math.min(into.length, 4),
    write: async () => undefined,
    fstat: async () => stat,
    fsetstat: async () => undefined,
    fsync: async () => undefined,
    fstatvfs: async () => { throw new Error('unused'); },
    copyTo: async () => 0,
    close: async () => undefined,
    ...over,
  };
}

/** Every path operation fails with ENOENT unless the test gives it. */
export function fakeFs(over: Partial<FileSystem> = {}, file: OpenFile = fakeFile()): FileSystem {
  const fail = async (): Promise<never> => { throw Object.assign(new Error('x'), { code: 'ENOENT' }); };
  return {
    open: async () => file, opendir: fail, stat: async () => stat, lstat: async () => stat, setstat: fail, lsetstat: fail,
    mkdir: fail, rmdir: fail, remove: fail, rename: fail, link: fail, symlink: fail, readlink: fail, realpath: async (p) => p, statvfs: fail,
    ...over,
  };
}

/** `queued`: what outgoingBytes() reports (replies waiting for the client's window). */
export type FakeChannel = SFTPWrapper & { queued: number };

export function fakeSftp(sent: Sent[]): FakeChannel {
  const e = new EventEmitter() as unknown as FakeChannel & Record<string, unknown>;
  for (const kind of ['handle', 'data', 'attrs', 'name', 'extendedReply'])
    e[kind] = (id: number, arg: unknown) => sent.push({ kind, id, arg });
  e['status'] = (id: number, code: number, message: string) => sent.push({ kind: 'status', id, arg: code, message });
  e['dataInPlace'] = (id: number) => sent.push({ kind: 'data', id }) > 0;
  e['releaseWriteData'] = () => undefined;
  e.queued = 0;
  e['pauseInput'] = () => undefined;
  e['resumeInput'] = () => undefined;
  e['outgoingBytes'] = () => e.queued;
  return e;
}

export function openSession(fs: FileSystem = fakeFs(), opts: Partial<SessionOptions> = {}) {
  const sent: Sent[] = [];
  const events: AuditEvent[] = [];
  const sftp = fakeSftp(sent);
  const session = new SftpSession(sftp, {
    user: 'u', sessionId: 's', remote: '127.0.0.1:1', clientIdent: 'SSH-2.0-OpenSSH_9.2', fs,
    policy: new Policy({ readOnly: false, denyRequests: new Set() }), audit: { emit: (e) => events.push(e) },
    limits: { maxHandles: 10, maxRequestsInFlight: 100, maxInflightBytes: 1 << 24 }, startDirectory: '/home', umask: 0o022,
    hashUploads: false, ownerName: 'u', groupName: 'u', ...opts,
  });
  const emit = (...a: unknown[]) => (sftp as unknown as EventEmitter).emit(...(a as [string, ...unknown[]]));
  return { session, sftp, sent, events, emit };
}

export const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));
