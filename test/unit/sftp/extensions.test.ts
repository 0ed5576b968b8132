/** Each OpenSSH extension (src/sftp/extensions/*.ts), driven through a session as a client sends it. */
import { describe, it, expect } from 'vitest';
import { WireWriter } from '../../../src/sftp/attrs.js';
import { SERVER_UID, SERVER_GID } from '../../../src/sftp/owner.js';
import { MAX_PACKET, MAX_READ } from '../../../src/sftp/read-buffers.js';
import { STATUS } from '../../../src/errors.js';
import type { FileSystem, OpenFile, VfsStat } from '../../../src/fs/file-system.js';
import { fakeFile, fakeFs, openSession, stat, tick } from './fakes.js';

/** Sends one EXTENDED request and returns the reply to it. */
async function ask(s: ReturnType<typeof openSession>, name: string, payload: WireWriter | Buffer) {
  const id = 100 + s.sent.length;
  s.emit('EXTENDED', id, name, Buffer.isBuffer(payload) ? payload : payload.toBuffer());
  await tick();
  return s.sent.find((r) => r.id === id)!;
}
async function openFile(s: ReturnType<typeof openSession>, path = '/f', pflags = 3): Promise<Buffer> {
  const id = 100 + s.sent.length;
  s.emit('OPEN', id, path, pflags, {});
  await tick();
  return s.sent.find((r) => r.id === id && r.kind === 'handle')!.arg as Buffer;
}
const w = () => new WireWriter();
const u64s = (b: Buffer) => Array.from({ length: b.length / 8 }, (_, i) => Number(b.readBigUInt64BE(i * 8)));

describe('posix-rename@openssh.com', () => {
  it('renames replacing the target, and records a rename with overwrite', async () => {
    const calls: unknown[] = [];
    const s = openSession(fakeFs({ rename: async (...a) => void calls.push(a) }));
    expect(await ask(s, 'posix-rename@openssh.com', w().string('a').string('/b'))).toMatchObject({ kind: 'status', arg: STATUS.OK });
    expect(calls).toEqual([['/home/a', '/b', true]]);
    expect(s.events).toMatchObject([{ event: 'rename', from: '/home/a', to: '/b', overwrite: true, ok: true }]);
  });
});

describe('statvfs@openssh.com and fstatvfs@openssh.com', () => {
  const vfs: VfsStat = { bsize: 1, frsize: 2, blocks: 3, bfree: 4, bavail: 5, files: 6, ffree: 7, favail: 8, fsid: 9, flag: 10, namemax: 11 };
  it('statvfs answers the eleven fields in OpenSSH order', async () => {
    const s = openSession(fakeFs({ statvfs: async () => vfs }));
    expect(u64s((await ask(s, 'statvfs@openssh.com', w().string('/'))).arg as Buffer)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });
  it('fstatvfs answers for an open handle', async () => {
    const s = openSession(fakeFs({}, fakeFile({ fstatvfs: async () => vfs })));
    const h = await openFile(s);
    expect(u64s((await ask(s, 'fstatvfs@openssh.com', w().string(h))).arg as Buffer)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });
});

describe('hardlink@openssh.com', () => {
  it('links the second path to the first and records a link', async () => {
    const calls: unknown[] = [];
    const s = openSession(fakeFs({ link: async (...a) => void calls.push(a) }));
    await ask(s, 'hardlink@openssh.com', w().string('/a').string('/b'));
    expect(calls).toEqual([['/a', '/b']]);
    expect(s.events).toMatchObject([{ event: 'link', from: '/a', to: '/b', ok: true }]);
  });
});

describe('fsync@openssh.com', () => {
  it("syncs the handle's file", async () => {
    let synced = 0;
    const s = openSession(fakeFs({}, fakeFile({ fsync: async () => void synced++ })));
    expect(await ask(s, 'fsync@openssh.com', w().string(await openFile(s)))).toMatchObject({ arg: STATUS.OK });
    expect(synced).toBe(1);
  });
});

describe('lsetstat@openssh.com', () => {
  it('sets the mode without following links; a change of owner is PERMISSION_DENIED', async () => {
    const calls: unknown[] = [];
    const s = openSession(fakeFs({ lsetstat: async (...a) => void calls.push(a) }));
    expect(await ask(s, 'lsetstat@openssh.com', w().string('/l').u32(0x4).u32(0o640))).toMatchObject({ arg: STATUS.OK });
    expect(calls).toEqual([['/l', { mode: 0o640 }]]);
    expect(s.events).toMatchObject([{ event: 'setstat', path: '/l', changes: { mode: '0640' } }]);
    const chown = w().string('/l').u32(0x2).u32((SERVER_UID ?? 0) + 1).u32(SERVER_GID ?? 0);
    expect(await ask(s, 'lsetstat@openssh.com', chown)).toMatchObject({ arg: STATUS.PERMISSION_DENIED });
  });
});

describe('limits@openssh.com', () => {
  it("reports OpenSSH's sizes and how many handles the client may still open", async () => {
    const s = openSession();
    await openFile(s);
    expect(u64s((await ask(s, 'limits@openssh.com', Buffer.alloc(0))).arg as Buffer)).toEqual([MAX_PACKET, MAX_READ, MAX_READ, 9]);
  });
});

describe('expand-path@openssh.com', () => {
  it('"~" and "~/x" start at the start directory, "~user" only for the user', async () => {
    const s = openSession();
    const path = async (p: string) => ((await ask(s, 'expand-path@openssh.com', w().string(p))).arg as { filename: string }[])?.[0]?.filename;
    expect(await path('~')).toBe('/home');
    expect(await path('~/x')).toBe('/home/x');
    expect(await path('~u/y')).toBe('/home/y');
    expect(await path('rel')).toBe('/home/rel');
    expect(await ask(s, 'expand-path@openssh.com', w().string('~root'))).toMatchObject({ kind: 'status', arg: STATUS.NO_SUCH_FILE });
  });
});

describe('copy-data', () => {
  it('length 0 copies to the end of the file as it is when the copy starts', async () => {
    const copies: unknown[] = [];
    const src: OpenFile = fakeFile({ fstat: async () => ({ ...stat, size: 10, ino: 1, dev: 1 }), copyTo: async (_t, ro, len, wo) => (copies.push([ro, len, wo]), len) });
    const dst: OpenFile = fakeFile({ fstat: async () => ({ ...stat, ino: 2, dev: 1 }) });
    const fs: FileSystem = fakeFs({ open: async (p) => (p === '/src' ? src : dst) });
    const s = openSession(fs);
    const a = await openFile(s, '/src', 1);
    const b = await openFile(s, '/dst', 2);
    expect(await ask(s, 'copy-data', w().string(a).u64(4).u64(0).string(b).u64(0))).toMatchObject({ arg: STATUS.OK });
    expect(copies).toEqual([[4, 6, 0]]);
    expect(s.events).toMatchObject([{ event: 'copy', from: '/src', to: '/dst', bytes: 6, ok: true }]);
  });
  it('refuses to copy a file onto itself', async () => {
    const s = openSession();
    const h = await openFile(s);
    expect(await ask(s, 'copy-data', w().string(h).u64(0).u64(0).string(h).u64(0))).toMatchObject({ arg: STATUS.FAILURE });
  });
});

describe('home-directory', () => {
  it("is the start directory for the user, and FAILURE for another user's", async () => {
    const s = openSession();
    expect(await ask(s, 'home-directory', w().string('u'))).toMatchObject({ kind: 'name', arg: [{ filename: '/home' }] });
    expect(await ask(s, 'home-directory', w().string('root'))).toMatchObject({ kind: 'status', arg: STATUS.FAILURE });
  });
});

describe('users-groups-by-id@openssh.com', () => {
  it("names only the server's own ids; an id list that is not whole uint32s is BAD_MESSAGE", async () => {
    const s = openSession();
    const ids = (...n: number[]) => Buffer.concat(n.map((v) => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255])));
    const reply = (await ask(s, 'users-groups-by-id@openssh.com', w().string(ids(SERVER_UID ?? 0, 12345)).string(ids(SERVER_GID ?? 0)))).arg as Buffer;
    expect(reply).toEqual(w().string(w().string('u').string('').toBuffer()).string(w().string('u').toBuffer()).toBuffer());
    expect(await ask(s, 'users-groups-by-id@openssh.com', w().string(Buffer.alloc(3)).string(Buffer.alloc(0)))).toMatchObject({ arg: STATUS.BAD_MESSAGE });
  });
});

describe('every extension', () => {
  it('answers a truncated payload with BAD_MESSAGE', async () => {
    const s = openSession();
    expect(await ask(s, 'hardlink@openssh.com', w().u32(50))).toMatchObject({ kind: 'status', arg: STATUS.BAD_MESSAGE });
  });
});
