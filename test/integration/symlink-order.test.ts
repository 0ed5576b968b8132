/**
 * SYMLINK's argument order as clients that are not OpenSSH put it on the wire (src/sftp/symlink-order.ts):
 * raw SFTP bytes under each client's identification string, checked on the disk with readlink(2).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { RawSftp, FXP, FX, str, describeReply } from '../helpers/raw-sftp.js';

let s: TestServer;
const clients: RawSftp[] = [];

beforeAll(async () => {
  s = await startTestServer({ files: { 'file.txt': 'data', 'dir/': null, 'dir/inner.txt': 'inner' } });
});
afterAll(async () => {
  for (const c of clients) await c.end();
  await s?.close();
});

/** A raw SFTP session whose SSH identification is `SSH-2.0-${ident}`. */
async function as(ident: string): Promise<RawSftp> {
  const raw = await RawSftp.open(s, { connect: { ident } });
  clients.push(raw);
  return raw;
}

/** Sends SYMLINK with its two strings in exactly this wire order; expects OK. */
async function symlinkWire(raw: RawSftp, first: string, second: string): Promise<void> {
  const r = await raw.req(FXP.SYMLINK, Buffer.concat([str(first), str(second)]));
  expect(r.type === FXP.STATUS && r.code === FX.OK, describeReply(r)).toBe(true);
}

const onDisk = (vpath: string) => join(s.root, vpath);
const isSymlink = (vpath: string) => {
  try {
    return lstatSync(onDisk(vpath)).isSymbolicLink();
  } catch {
    return false;
  }
};

describe('SYMLINK order by client', () => {
  it('an AsyncSSH client sends (link, target): the link is made at the first name', async () => {
    const raw = await as('AsyncSSH_2.14.2');
    // A dangling target: nothing on the disk tells which name is the link, only the table does.
    await symlinkWire(raw, '/asyncssh-link', 'asyncssh-target');
    expect(readlinkSync(onDisk('asyncssh-link'))).toBe('asyncssh-target');
    expect(isSymlink('asyncssh-target')).toBe(false);
    // Its link name taken: refused, never turned round into a link at the target's name.
    const r = await raw.req(FXP.SYMLINK, Buffer.concat([str('/file.txt'), str('asyncssh-free')]));
    expect(r.type === FXP.STATUS && r.code !== FX.OK, describeReply(r)).toBe(true);
    expect(isSymlink('asyncssh-free')).toBe(false);
  });

  it('an Apache MINA SSHD client sends (target, link): the link is made at the second name', async () => {
    const raw = await as('APACHE-SSHD-2.12.0');
    await symlinkWire(raw, 'mina-target', '/mina-link');
    expect(readlinkSync(onDisk('mina-link'))).toBe('mina-target');
    expect(isSymlink('mina-target')).toBe(false);
  });

  it('a paramiko client sends (target, link): the link is made at the second name, the target kept byte for byte', async () => {
    const raw = await as('paramiko_3.4.0');
    await symlinkWire(raw, '/dir/../somewhere/paramiko target', '/paramiko-link');
    expect(readlinkSync(onDisk('paramiko-link'))).toBe('/dir/../somewhere/paramiko target');
    expect(isSymlink('dir/../somewhere/paramiko target')).toBe(false);
  });

  describe('a client in neither list is judged by the request', () => {
    let raw: RawSftp;
    beforeAll(async () => {
      raw = await as('SomeClient_1.0');
    });

    it("the draft's order (link, existing target) makes the link at the first name", async () => {
      await symlinkWire(raw, '/unknown-draft-link', 'file.txt');
      expect(readlinkSync(onDisk('unknown-draft-link'))).toBe('file.txt');
    });

    it("OpenSSH's order (existing target, link) makes the link at the second name, the free one", async () => {
      await symlinkWire(raw, 'file.txt', '/unknown-openssh-link');
      expect(readlinkSync(onDisk('unknown-openssh-link'))).toBe('file.txt');
      expect(lstatSync(onDisk('file.txt')).isFile()).toBe(true);
    });

    it("two free names (a dangling link) follow the draft's order", async () => {
      await symlinkWire(raw, '/unknown-dangling-link', 'nowhere');
      expect(readlinkSync(onDisk('unknown-dangling-link'))).toBe('nowhere');
      expect(isSymlink('nowhere')).toBe(false);
    });

    it("OpenSSH's order with a target relative to the link's directory makes the link at the second name", async () => {
      // `ln -s inner.txt /dir/rel-link`: the target exists next to the link (/dir/inner.txt),
      // not in the session's working directory (/inner.txt).
      await symlinkWire(raw, 'inner.txt', '/dir/unknown-relative-link');
      expect(isSymlink('inner.txt')).toBe(false);
      expect(readlinkSync(onDisk('dir/unknown-relative-link'))).toBe('inner.txt');
    });
  });
});
