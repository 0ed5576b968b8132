import { describe, it, expect } from 'vitest';
import { HandleTable, type FileHandle, type DirHandle } from '../../../src/sftp/handles.js';
import { TransferStats } from '../../../src/sftp/transfer.js';
import { fakeFile } from './fakes.js';

const flags = { read: true, write: false, append: false, creat: false, trunc: false, excl: false };
function file(onClose = () => {}): FileHandle {
  return { kind: 'file', path: '/f', file: fakeFile({ close: async () => onClose() }), stats: new TransferStats('/f', flags, 0, false) };
}
function dir(): DirHandle {
  return { kind: 'dir', path: '/d', dir: { next: async () => [], close: async () => undefined } };
}

describe('HandleTable', () => {
  it('hands out 16 random bytes per handle, never the same twice', async () => {
    const t = new HandleTable(300);
    const ids = await Promise.all(Array.from({ length: 300 }, () => t.add(file())));
    expect(ids.every((id) => id.length === 16)).toBe(true);
    expect(new Set(ids.map((id) => id.toString('hex'))).size).toBe(300);
  });

  it('at the cap, refuses with FAILURE "Too many open handles" and closes what it was given', async () => {
    const t = new HandleTable(1);
    await t.add(file());
    let closed = false;
    await expect(t.add(file(() => (closed = true)))).rejects.toMatchObject({ status: 'FAILURE', clientMessage: 'Too many open handles' });
    expect(closed).toBe(true);
    expect([t.size, t.free]).toEqual([1, 0]);
  });

  it('file() refuses a directory handle, dir() a file handle, and both an unknown one', async () => {
    const t = new HandleTable(4);
    const f = await t.add(file());
    const d = await t.add(dir());
    expect(() => t.file(d)).toThrow('Invalid handle');
    expect(() => t.dir(f)).toThrow('Invalid handle');
    expect(() => t.file(Buffer.alloc(16))).toThrow('Invalid handle');
    expect(t.file(f).kind).toBe('file');
  });

  it('a handle looked up while a request starts is held: settled() waits until the request releases it', async () => {
    const t = new HandleTable(4);
    const id = await t.add(file());
    t.collect();
    const looked = t.file(id);
    const held = t.hold();
    const h = t.take(id);
    expect(h).toBe(looked);
    let settled = false;
    void t.settled(h).then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(settled).toBe(false);
    t.release(held);
    await new Promise((r) => setTimeout(r, 0));
    expect(settled).toBe(true);
  });

  it('peek() and lookups outside collect()…hold() hold nothing', async () => {
    const t = new HandleTable(4);
    const id = await t.add(file());
    t.file(id);
    t.collect();
    t.peek(id);
    expect(t.hold()).toBeUndefined();
    await expect(t.settled(t.take(id))).resolves.toBeUndefined();
  });

  it('take() removes the handle: later requests on it are refused; takeAll() empties the table', async () => {
    const t = new HandleTable(4);
    const id = await t.add(file());
    await t.add(dir());
    t.take(id);
    expect(() => t.take(id)).toThrow('Invalid handle');
    expect(t.takeAll().map((h) => h.kind)).toEqual(['dir']);
    expect(t.size).toBe(0);
  });
});
