import { describe, it, expect } from 'vitest';
import { EventEmitter } from 'node:events';
import type { SFTPWrapper } from 'ssh2';
import { REQUESTS, REQUEST_NAMES, SERVER_EXTENSIONS, WRITES, FAULT_NAMES, PACKET_REQUESTS, extensionRequest } from '../../../src/sftp/requests.js';
import { userSchema } from '../../../src/config/schema.js';
import { Policy } from '../../../src/sftp/policy.js';
import { HANDLERS, bind } from '../../../src/sftp/dispatch.js';
import { FaultInjector, FAULT_OPS } from '../../../src/testing/faults.js';
import { WireReader } from '../../../src/sftp/attrs.js';
import type { FileSystem } from '../../../src/fs/file-system.js';
import { fakeFile, fakeFs } from './fakes.js';

const names = REQUESTS.map((r) => r.name);

describe('the request table', () => {
  it('names every request once', () => {
    expect(new Set(names).size).toBe(names.length);
    expect(REQUEST_NAMES).toEqual(names);
  });

  it("config's denyRequests accepts exactly the table's names", () => {
    expect(userSchema.safeParse({ username: 'u', denyRequests: names }).success).toBe(true);
    expect(userSchema.safeParse({ username: 'u', denyRequests: ['chown'] }).success).toBe(false);
  });

  it("VERSION lists the table's extensions with the versions OpenSSH's sftp-server announces", () => {
    expect(SERVER_EXTENSIONS).toEqual([
      ['posix-rename@openssh.com', '1'], ['statvfs@openssh.com', '2'], ['fstatvfs@openssh.com', '2'],
      ['hardlink@openssh.com', '1'], ['fsync@openssh.com', '1'], ['lsetstat@openssh.com', '1'],
      ['limits@openssh.com', '1'], ['expand-path@openssh.com', '1'], ['copy-data', '1'],
      ['home-directory', '1'], ['users-groups-by-id@openssh.com', '1'],
    ]);
    expect(SERVER_EXTENSIONS.length + PACKET_REQUESTS.length).toBe(REQUESTS.length);
  });

  it('a read-only user is refused exactly the requests the table marks as writing, and OPEN for writing', () => {
    const policy = new Policy({ readOnly: true, denyRequests: new Set() });
    const refused = names.filter((n) => {
      try {
        policy.check(n);
        return false;
      } catch {
        return true;
      }
    });
    expect(refused).toEqual(REQUESTS.filter((r) => r.writes === true).map((r) => r.name));
    expect(refused).toEqual([...WRITES]);
    expect(() => policy.check('open', { writes: true })).toThrow('read-only user');
  });

  it("the test double's failNext() takes the table's fault names and no other", () => {
    expect(FAULT_OPS).toEqual(FAULT_NAMES);
    expect(new Set(FAULT_OPS)).toEqual(new Set(REQUESTS.flatMap((r) => ('fault' in r ? [r.fault] : []))));
    expect(() => new FaultInjector().failNext('chown' as never, 'FAILURE')).toThrow('unknown operation "chown"');
  });

  it("every fault name fails an operation of the test double's FileSystem", async () => {
    const faulted = new Set<string>();
    for (const name of FAULT_NAMES) {
      const faults = new FaultInjector();
      const fs = faults.wrap(fakeFs({ opendir: async () => ({ next: async () => [], close: async () => undefined }), statvfs: async () => ({}) as never }, fakeFile()));
      const ops = await everyOperation(fs);
      faults.failNext(name, 'FAILURE');
      for (const op of ops) await op().catch((e: Error) => e.message.includes(`(${name})`) && faulted.add(name));
    }
    expect([...faulted].sort()).toEqual([...FAULT_NAMES].sort());
  });
});

/** One call of each FileSystem, OpenFile and DirReader operation; the file and directory are opened first. */
async function everyOperation(fs: FileSystem): Promise<(() => Promise<unknown>)[]> {
  const f = await fs.open('/f', { read: true, write: true, append: false, creat: false, trunc: false, excl: false }, 0o644);
  const d = await fs.opendir('/d');
  const path: (() => Promise<unknown>)[] = [
    () => fs.open('/f', { read: true, write: false, append: false, creat: false, trunc: false, excl: false }, 0o644), () => fs.opendir('/d'),
    () => fs.stat('/f'), () => fs.lstat('/f'), () => fs.setstat('/f', {}), () => fs.lsetstat('/f', {}), () => fs.mkdir('/d', 0o755),
    () => fs.rmdir('/d'), () => fs.remove('/f'), () => fs.rename('/a', '/b', false), () => fs.rename('/a', '/b', true),
    () => fs.link('/a', '/b'), () => fs.symlink('t', '/l'), () => fs.readlink('/l'), () => fs.realpath('/'), () => fs.statvfs('/'),
  ];
  const file = [() => f.read(0, Buffer.alloc(4)), () => f.write(0, Buffer.alloc(4)), () => f.fstat(), () => f.fsetstat({}), () => f.fsync(), () => f.fstatvfs(), () => f.copyTo(f, 0, 1, 0), () => f.close()];
  const dir = [() => d.next(1), () => d.close()];
  return [...path, ...file, ...dir];
}

describe('the dispatch', () => {
  it('every request has a handler', () => {
    expect(names.filter((n) => typeof HANDLERS[n]?.serve !== 'function')).toEqual([]);
  });

  it("each ssh2 request event and each extension, with or without @openssh.com, reaches its table row", () => {
    const sftp = new EventEmitter();
    const ran: string[] = [];
    const unknown: string[] = [];
    bind(sftp as unknown as SFTPWrapper, (request, _id, fields) => ran.push(request + (fields[0] instanceof WireReader ? '+reader' : '')), (_id, n) => unknown.push(n));
    for (const [event] of PACKET_REQUESTS) sftp.emit(event, 1, '/p');
    for (const [wire] of SERVER_EXTENSIONS) sftp.emit('EXTENDED', 1, wire, Buffer.alloc(0));
    sftp.emit('EXTENDED', 1, 'copy-data@openssh.com', Buffer.alloc(0));
    sftp.emit('EXTENDED', 1, 'open', Buffer.alloc(0));
    expect(ran).toEqual([...PACKET_REQUESTS.map(([, r]) => r), ...SERVER_EXTENSIONS.map(([w]) => extensionRequest(w) + '+reader'), 'copy-data+reader']);
    expect(unknown).toEqual(['open']);
  });
});
