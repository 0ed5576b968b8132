import { describe, it, expect } from 'vitest';
import { EventEmitter } from 'node:events';
import type { SFTPWrapper } from 'ssh2';
import { SftpSession } from '../../src/sftp/session.js';
import { Policy } from '../../src/sftp/policy.js';
import { Audit } from '../../src/audit/events.js';
import type { FileSystem, OpenFile, FileStat } from '../../src/fs/file-system.js';

const stat: FileStat = { mode: 0o100644, uid: 0, gid: 0, size: 10, atime: 0, mtime: 0, nlink: 1 };

/** A FileSystem whose reads finish in the order the test says, not the order they started. */
function slowFs(gates: Map<number, Promise<void>>): FileSystem {
  const file: OpenFile = {
    stat,
    read: async (position, into) => {
      await gates.get(position);
      into.fill(position, 0, 4);
      return Math.min(into.length, 4);
    },
    write: async () => undefined,
    fstat: async () => stat,
    fsetstat: async () => undefined,
    fsync: async () => undefined,
    fstatvfs: async () => { throw new Error('unused'); },
    copyTo: async () => 0,
    close: async () => undefined,
  };
  const fail = async (): Promise<never> => { throw Object.assign(new Error('x'), { code: 'ENOENT' }); };
  return {
    open: async () => file, opendir: fail, stat: async () => stat, lstat: async () => stat, setstat: fail, lsetstat: fail,
    mkdir: fail, rmdir: fail, remove: fail, rename: fail, link: fail, symlink: fail, readlink: fail, realpath: async (p) => p, statvfs: fail,
  };
}

function fakeSftp(replies: { kind: string; id: number; handle?: Buffer }[]): SFTPWrapper {
  const e = new EventEmitter() as unknown as SFTPWrapper & Record<string, unknown>;
  for (const kind of ['handle', 'data', 'status', 'attrs', 'name', 'extendedReply'])
    e[kind] = (id: number, arg: unknown) => replies.push({ kind, id, ...(kind === 'handle' ? { handle: arg as Buffer } : {}) });
  e['dataInPlace'] = (id: number) => replies.push({ kind: 'data', id }) > 0;
  e['pauseInput'] = () => undefined;
  e['resumeInput'] = () => undefined;
  return e;
}

/** A session over the fake: the READ at offset 0 waits until releaseFirst() is called. */
function session() {
  const replies: { kind: string; id: number; handle?: Buffer }[] = [];
  const sftp = fakeSftp(replies);
  let releaseFirst!: () => void;
  const gates = new Map<number, Promise<void>>([[0, new Promise<void>((r) => (releaseFirst = r))]]);
  new SftpSession(sftp, {
    user: 'u', sessionId: 's', remote: '127.0.0.1:1', clientIdent: 'SSH-2.0-OpenSSH_9.2', fs: slowFs(gates),
    policy: new Policy({ readOnly: false, denyRequests: new Set() }), audit: new Audit('t'),
    limits: { maxHandles: 10, maxRequestsInFlight: 100, maxInflightBytes: 1 << 24 }, startDirectory: '/', umask: 0o022,
    hashUploads: false, ownerName: 'u', groupName: 'u',
  });
  const emit = (...a: unknown[]) => (sftp as unknown as EventEmitter).emit(...(a as [string, ...unknown[]]));
  return { replies, sftp, releaseFirst, emit };
}

describe('SFTP session reply order', () => {
  it('replies leave in the order requests arrived, even when later requests finish first', async () => {
    const { replies, sftp, releaseFirst, emit } = session();
    emit('OPEN', 1, '/f', 1, {});
    await new Promise((r) => setTimeout(r, 10));
    const handle = replies[0]!.handle!;
    emit('READ', 2, handle, 0, 4); // held back by its gate
    emit('READ', 3, handle, 4, 4);
    emit('STAT', 4, '/f');
    await new Promise((r) => setTimeout(r, 20));
    expect(replies.map((r) => r.id)).toEqual([1]); // nothing overtakes request 2
    releaseFirst();
    await new Promise((r) => setTimeout(r, 20));
    expect(replies.map((r) => `${r.kind}:${r.id}`)).toEqual(['handle:1', 'data:2', 'data:3', 'attrs:4']);
  });
});

describe('answers to malformed packets', () => {
  it('take their place in the reply order instead of overtaking earlier replies', async () => {
    const { replies, sftp, releaseFirst, emit } = session();
    emit('OPEN', 1, '/f', 1, {});
    await new Promise((r) => setTimeout(r, 10));
    emit('READ', 2, replies[0]!.handle!, 0, 4); // held back by its gate
    // What the patched ssh2 parser does for a malformed packet with id 3:
    sftp.answerProtocolError?.(3, 5, 'Bad message');
    await new Promise((r) => setTimeout(r, 20));
    expect(replies.map((r) => r.id)).toEqual([1]);
    releaseFirst();
    await new Promise((r) => setTimeout(r, 20));
    expect(replies.map((r) => `${r.kind}:${r.id}`)).toEqual(['handle:1', 'data:2', 'status:3']);
  });
});
