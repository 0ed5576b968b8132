/**
 * Names that are not UTF-8 round-trip as bytes, as with OpenSSH: created, listed, stat'ed, read,
 * renamed and removed under the same bytes; two byte names are two files; names an administrator
 * put in a root (Latin-1) are reachable; logs show them escaped, never as U+FFFD.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync, writeFileSync, readlinkSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { RawSftp, FXP, PFLAG } from '../helpers/raw-sftp.js';

const bytes = (s: string) => Buffer.from(s, 'latin1');
const onDisk = (dir: string) => readdirSync(dir, { encoding: 'buffer' }).map((b) => b.toString('hex')).sort();

let s: TestServer;
let raw: RawSftp;
let logs: string;
beforeAll(async () => {
  logs = mkdtempSync(join(tmpdir(), 'byte-names-logs-'));
  s = await startTestServer({ files: { 'w/': null }, config: { log: { file: join(logs, 'audit.json'), xferlog: join(logs, 'xferlog') } } });
  // An administrator's Latin-1 name: "café.txt" with é as the single byte 0xE9.
  writeFileSync(Buffer.concat([Buffer.from(join(s.root, 'w') + '/'), bytes('caf\xe9.txt')]), 'latin-1 file\n');
  raw = await RawSftp.open(s);
});
afterAll(async () => {
  await raw?.end();
  await s?.close();
  rmSync(logs, { recursive: true, force: true });
});

async function eventually(read: () => string, done: (text: string) => boolean): Promise<string> {
  for (let i = 0; ; i++) {
    const text = read();
    if (done(text) || i === 100) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function upload(path: Buffer, data: string): Promise<void> {
  const h = await raw.openHandle(path as unknown as string, PFLAG.WRITE | PFLAG.CREAT | PFLAG.TRUNC);
  expect((await raw.write(h, 0, Buffer.from(data))).code).toBe(0);
  expect((await raw.close(h)).code).toBe(0);
}

describe('file names that are not UTF-8', () => {
  it('two uploads named by different invalid bytes are two files with exactly those names on disk', async () => {
    await upload(bytes('/w/up-\xbf.txt'), 'first');
    await upload(bytes('/w/up-\xfe.txt'), 'second');
    expect(onDisk(join(s.root, 'w'))).toEqual([bytes('caf\xe9.txt'), bytes('up-\xbf.txt'), bytes('up-\xfe.txt')].map((b) => b.toString('hex')).sort());
    expect(readFileSync(Buffer.concat([Buffer.from(join(s.root, 'w') + '/'), bytes('up-\xbf.txt')]), 'utf8')).toBe('first');
  });

  it('READDIR lists each name with its exact bytes, the administrator\'s Latin-1 name included', async () => {
    const h = (await raw.opendir('/w')).handle!;
    const names: Buffer[] = [];
    for (;;) {
      const r = await raw.readdir(h);
      if (r.type !== FXP.NAME) break;
      for (const n of r.names!) if (!['.', '..'].includes(n.filename)) names.push(n.bytes);
    }
    await raw.close(h);
    expect(names.map((b) => b.toString('hex')).sort()).toEqual(onDisk(join(s.root, 'w')));
  });

  it('STAT, OPEN and READ reach the file by its bytes (the Latin-1 one too)', async () => {
    const st = await raw.stat(bytes('/w/caf\xe9.txt'));
    expect(st.type).toBe(FXP.ATTRS);
    expect(st.attrs?.size).toBe('latin-1 file\n'.length);
    const h = await raw.openHandle(bytes('/w/up-\xfe.txt') as unknown as string, PFLAG.READ);
    expect(String((await raw.read(h, 0, 100)).data)).toBe('second');
    await raw.close(h);
  });

  it('RENAME, SYMLINK, READLINK and REALPATH keep the bytes', async () => {
    expect((await raw.rename(bytes('/w/up-\xbf.txt'), bytes('/w/ren-\xff.txt'))).code).toBe(0);
    expect((await raw.symlink(bytes('/w/ln-\xa0'), bytes('ren-\xff.txt'))).code).toBe(0);
    expect(readlinkSync(Buffer.concat([Buffer.from(join(s.root, 'w') + '/'), bytes('ln-\xa0')]), { encoding: 'buffer' })).toEqual(bytes('ren-\xff.txt'));
    expect((await raw.readlink(bytes('/w/ln-\xa0'))).names?.[0]?.bytes).toEqual(bytes('ren-\xff.txt'));
    expect((await raw.realpath(bytes('/w/./ren-\xff.txt'))).names?.[0]?.bytes).toEqual(bytes('/w/ren-\xff.txt'));
  });

  it('MKDIR, REMOVE and RMDIR act on the named bytes and nothing else', async () => {
    expect((await raw.mkdir(bytes('/w/d-\xc0'))).code).toBe(0);
    expect((await raw.rmdir(bytes('/w/d-\xc0'))).code).toBe(0);
    for (const n of ['/w/ln-\xa0', '/w/ren-\xff.txt', '/w/up-\xfe.txt', '/w/caf\xe9.txt']) expect((await raw.remove(bytes(n))).code, n).toBe(0);
    expect(readdirSync(join(s.root, 'w'))).toEqual([]);
  });

  it('the JSON log shows an invalid byte as \\udcNN and xferlog as \\xNN, never U+FFFD', async () => {
    // The JSON file is written asynchronously (flushed every 100 ms): wait for the last record.
    const json = await eventually(() => readFileSync(join(logs, 'audit.json'), 'utf8'), (t) => t.includes('"event":"rmdir"'));
    expect(json).toContain('"path":"/w/up-\\udcbf.txt"');
    expect(json).not.toContain('\ufffd');
    const paths = json.trim().split('\n').map((l) => JSON.parse(l) as { event: string; path?: string }).filter((r) => r.event === 'transfer').map((r) => r.path!);
    expect(paths.map((p) => Buffer.from(p.replace(/[\udc80-\udcff]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xdc00)), 'latin1'))).toContainEqual(bytes('/w/up-\xbf.txt'));
    const xfer = await eventually(() => readFileSync(join(logs, 'xferlog'), 'utf8'), (t) => t.includes('up-\\xfe'));
    expect(xfer).toContain('/w/up-\\xbf.txt');
    expect(xfer).not.toContain('\ufffd');
  });
});
