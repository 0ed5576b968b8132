/**
 * Atomic uploads (src/sftp/staged-upload.ts) with real clients: OpenSSH sftp, lftp, rclone, PuTTY
 * psftp and ssh2-sftp-client. A new upload is written under a hidden staging name and renamed over
 * its final name on a successful CLOSE; a cut session removes it. Watched from the server's disk
 * (test/helpers/upload-watch.ts) while the server throttles writes (`faults.bytesPerSecond`), so
 * that every upload is seen in progress: the final name must read as the previous content (or be
 * absent) until it reads as the whole new content, never anything in between.
 * Resuming (opens that keep content) writes in place: OpenSSH `reput`, lftp `put -c`, psftp
 * `reput`, ssh2-sftp-client writing from an offset (flags 'r+'); rclone 1.60 cannot resume an upload.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { HOST_TAG, STAGING_PREFIX } from '../../src/sftp/staged-upload.js';
import { clientFiles, sshOptions } from '../helpers/openssh.js';
import { killAllClients, killTree, startClient, stagingFiles, until, watchUpload, type ClientRun } from '../helpers/upload-watch.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The previous content of a replaced file; a killed upload; a replacing one; a resumed one. */
const OLD = randomBytes(100_000);
const BIG = randomBytes(16 * MiB);
const MID = randomBytes(3 * MiB);
const WHOLE = randomBytes(2 * MiB);
const HALF = WHOLE.subarray(0, WHOLE.length / 2);

let s: TestServer;
let local: string;
let home: string;
let keys: Awaited<ReturnType<typeof clientFiles>>;
const at = (name: string) => join(local, name);

beforeAll(async () => {
  local = await mkdtemp(join(tmpdir(), 'atomic-local-'));
  home = await mkdtemp(join(tmpdir(), 'atomic-home-'));
  await Promise.all([
    writeFile(at('big.bin'), BIG),
    writeFile(at('mid.bin'), MID),
    writeFile(at('whole.bin'), WHOLE),
    writeFile(at('half.bin'), HALF),
  ]);
  s = await startTestServer({ config: { log: { hashUploads: 'sha256' } } });
  keys = await clientFiles(s);
});
afterEach(async () => {
  await killAllClients();
  s.faults.bytesPerSecond = 0;
});
afterAll(async () => {
  await killAllClients();
  await s?.close();
  await keys?.cleanup();
  await rm(local, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

/** An upload under way: `finished` says why it failed (undefined: it succeeded); `kill` cuts it. */
interface Upload {
  finished: Promise<string | undefined>;
  kill(): Promise<void>;
}

interface Client {
  name: string;
  /** Remote directory of this client's files. */
  dir: string;
  put(localFile: string, remote: string): Promise<Upload>;
  /** Resumes an upload: sends the rest of `localFile` after what `remote` holds. */
  resume?(localFile: string, remote: string): Promise<void>;
}

/** A client program run to upload: killed with every process it started. */
function program(run: ClientRun, failed: (r: { code: number | null; stdout: string; stderr: string }) => boolean): Upload {
  return {
    finished: run.done.then((r) => (failed(r) ? `exit ${r.code}: ${r.stdout.slice(-500)} ${r.stderr.slice(-500)}` : undefined)),
    kill: () => killTree(run),
  };
}
const mustFinish = async (u: Upload) => expect(await u.finished).toBeUndefined();

const sftpRun = (command: string): Upload => {
  const args = [...sshOptions(keys), '-P', String(s.port), '-b', '-', `${s.username}@127.0.0.1`];
  return program(startClient('sftp', args, { input: `${command}\n` }), (r) => r.code !== 0 || r.stderr.trim() !== '');
};
const openssh: Client = {
  name: 'OpenSSH sftp',
  dir: '/openssh',
  put: async (file, remote) => sftpRun(`put ${file} ${remote}`),
  resume: async (file, remote) => mustFinish(sftpRun(`reput ${file} ${remote}`)),
};

const lftpRun = (command: string): Upload => {
  const ssh = [
    'ssh', '-a', '-x', '-F', '/dev/null', '-o', `UserKnownHostsFile=${keys.knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'LogLevel=ERROR', '-i', keys.key,
  ].join(' ');
  const input = [
    'set cmd:fail-exit yes',
    `set sftp:connect-program "${ssh}"`,
    'set net:max-retries 1',
    'set net:timeout 20',
    `open -u ${s.username}, -p ${s.port} sftp://127.0.0.1`,
    command,
    '',
  ].join('\n');
  return program(startClient('lftp', [], { input, env: { ...process.env, HOME: home } }), (r) => r.code !== 0 || r.stderr.trim() !== '');
};
const lftp: Client = {
  name: 'lftp',
  dir: '/lftp',
  put: async (file, remote) => lftpRun(`put ${file} -o ${remote}`),
  resume: async (file, remote) => mustFinish(lftpRun(`put -c ${file} -o ${remote}`)),
};

const rclone: Client = {
  name: 'rclone',
  dir: '/rclone',
  async put(file, remote) {
    const params = [`host=127.0.0.1`, `port=${s.port}`, `user=${s.username}`, `key_file=${keys.key}`, `known_hosts_file=${keys.knownHosts}`, 'shell_type=none', 'disable_hashcheck=true'];
    const args = ['--config', '/dev/null', '-q', '--contimeout', '10s', '--low-level-retries', '1', '--retries', '1', 'copyto', file, `:sftp,${params.join(',')}:${remote}`];
    return program(startClient('rclone', args, { env: { ...process.env, HOME: home } }), (r) => r.code !== 0 || r.stderr.trim() !== '');
  },
};

const psftpRun = (command: string): Upload => {
  const args = ['-batch', ...s.hostKeys.flatMap((k) => ['-hostkey', k.fingerprint]), '-P', String(s.port), '-pw', s.password, `${s.username}@127.0.0.1`];
  // psftp goes on after a failed command read from stdin: its words tell.
  return program(startClient('psftp', args, { input: `${command}\nquit\n`, env: { ...process.env, HOME: home } }), (r) => r.code !== 0 || /error|failure|unable|no such|denied/i.test(r.stdout + r.stderr));
};
const psftp: Client = {
  name: 'PuTTY psftp',
  dir: '/psftp',
  put: async (file, remote) => psftpRun(`put ${file} ${remote}`),
  resume: async (file, remote) => mustFinish(psftpRun(`reput ${file} ${remote}`)),
};

/** ssh2-sftp-client in this process; a cut session is its socket destroyed. */
async function sftpClient(): Promise<SftpClient> {
  const c = new SftpClient('atomic', { error: () => undefined, end: () => undefined, close: () => undefined });
  await c.connect({ ...s.connectOptions, readyTimeout: 10_000 } as unknown as SftpClient.ConnectOptions);
  return c;
}
const ssh2SftpClient: Client = {
  name: 'ssh2-sftp-client',
  dir: '/ssh2-sftp-client',
  async put(file, remote) {
    const c = await sftpClient();
    const finished = c.put(file, remote).then(
      () => undefined,
      (e: Error) => e.message,
    );
    return {
      finished: finished.finally(() => c.end().catch(() => undefined)),
      kill: async () => {
        (c as unknown as { client: ssh2.Client }).client.destroy();
        await finished;
      },
    };
  },
  async resume(file, remote) {
    const c = await sftpClient();
    try {
      const from = (await c.stat(remote)).size;
      // ssh2 takes 'r+' (READ|WRITE: no CREAT, no TRUNC); ssh2-sftp-client's types name only 'a' and 'w'.
      await c.put(createReadStream(file, { start: from }), remote, { writeStreamOptions: { flags: 'r+', start: from } } as unknown as SftpClient.TransferOptions);
    } finally {
      await c.end();
    }
  },
};

const CLIENTS: Client[] = [openssh, lftp, rclone, psftp, ssh2SftpClient];

for (const client of CLIENTS) {
  const C = client.name;
  const dir = () => join(s.root, client.dir);
  const transfers = (remote: string) => s.events.ofType('transfer', (r) => r.path === remote);

  describe(`atomic uploads with ${C}`, () => {
    beforeAll(async () => {
      await mkdir(dir(), { recursive: true });
    });

    it(`${C} killed in the middle of an upload over an existing file leaves the previous content, no staging file, and one incomplete atomic record`, async () => {
      const remote = `${client.dir}/killed.bin`;
      await writeFile(join(dir(), 'killed.bin'), OLD);
      s.faults.bytesPerSecond = 4 * MiB;
      const w = watchUpload(dir(), 'killed.bin', OLD, BIG);
      try {
        const up = await client.put(at('big.bin'), remote);
        await until('a staging file of 1 MiB or more grows while the final name reads the previous content', () => w.grewWhileBefore && w.stagingBytes >= MiB);
        await up.kill();
      } finally {
        await w.stop();
      }
      const rec = await s.events.waitFor('transfer', (r) => r.path === remote, { timeout: 15_000 });
      await s.events.waitFor('session.close', (r) => r.sessionId === rec.sessionId, { timeout: 15_000 });
      expect(rec).toMatchObject({ status: 'incomplete', atomic: true, direction: 'upload' });
      expect(rec.bytesWritten).toBeLessThan(BIG.length);
      expect(transfers(remote), 'one transfer record').toHaveLength(1);
      expect(sha(await readFile(join(dir(), 'killed.bin'))), 'the previous content under the final name').toBe(sha(OLD));
      expect([...(await stagingFiles(dir())).keys()], 'staging files left once the session is gone').toEqual([]);
      expect(w.others, 'reads of the final name that were neither the previous nor the new content').toEqual([]);
      expect(w.seen.after, 'the new content never appeared').toBe(0);
    });

    it(`${C} replacing an existing file: the final name reads the previous content until the whole new one appears`, async () => {
      const remote = `${client.dir}/replaced.bin`;
      await writeFile(join(dir(), 'replaced.bin'), OLD);
      s.faults.bytesPerSecond = 3 * MiB;
      const w = watchUpload(dir(), 'replaced.bin', OLD, MID);
      let done: string | undefined;
      try {
        done = await (await client.put(at('mid.bin'), remote)).finished;
      } finally {
        await w.stop();
      }
      expect(done, `${C} failed`).toBeUndefined();
      expect(sha(await readFile(join(dir(), 'replaced.bin'))), 'byte-identical after the client exits').toBe(sha(MID));
      expect(w.others, 'reads of the final name that were neither the previous nor the new content').toEqual([]);
      expect(w.grewWhileBefore, 'seen in progress: a staging file grew while the final name read the previous content').toBe(true);
      const rec = await s.events.waitFor('transfer', (r) => r.path === remote, { timeout: 15_000 });
      expect(rec).toMatchObject({ status: 'complete', atomic: true, bytesWritten: MID.length });
      // A server that hashed the upload (written in order) must have hashed these bytes.
      expect(rec.sha256 ?? sha(MID)).toBe(sha(MID));
      expect([...(await stagingFiles(dir())).keys()], 'staging files left').toEqual([]);
    });

    it(`${C} uploading to a new name: absent until the whole file appears, with an atomic record`, async () => {
      const remote = `${client.dir}/new.bin`;
      s.faults.bytesPerSecond = 3 * MiB;
      const w = watchUpload(dir(), 'new.bin', null, MID);
      let done: string | undefined;
      try {
        done = await (await client.put(at('mid.bin'), remote)).finished;
      } finally {
        await w.stop();
      }
      expect(done, `${C} failed`).toBeUndefined();
      expect(sha(await readFile(join(dir(), 'new.bin'))), 'byte-identical after the client exits').toBe(sha(MID));
      expect(w.others, 'reads of the final name that were neither absent nor the new content').toEqual([]);
      expect(w.grewWhileBefore, 'seen in progress: a staging file grew while the final name was absent').toBe(true);
      const rec = await s.events.waitFor('transfer', (r) => r.path === remote, { timeout: 15_000 });
      expect(rec).toMatchObject({ status: 'complete', atomic: true, bytesWritten: MID.length });
      expect([...(await stagingFiles(dir())).keys()], 'staging files left').toEqual([]);
    });

    const resume = client.resume?.bind(client);
    if (resume) {
      it(`${C} resuming after a complete upload of the first half writes in place, not atomically, and ends byte-identical`, async () => {
        const remote = `${client.dir}/resumed.bin`;
        await mustFinish(await client.put(at('half.bin'), remote));
        const first = await s.events.waitFor('transfer', (r) => r.path === remote, { timeout: 15_000 });
        expect(first).toMatchObject({ status: 'complete', atomic: true, bytesWritten: HALF.length });
        const before = await stat(join(dir(), 'resumed.bin'));
        expect(before.size).toBe(HALF.length);

        await resume(at('whole.bin'), remote);
        expect(sha(await readFile(join(dir(), 'resumed.bin'))), 'byte-identical to the whole file').toBe(sha(WHOLE));
        expect((await stat(join(dir(), 'resumed.bin'))).ino, 'the same file, written in place').toBe(before.ino);
        await until('the resumed transfer is recorded', () => transfers(remote).length >= 2);
        const second = transfers(remote)[1]!;
        expect(second.status).toBe('complete');
        expect(second.atomic, `resume opened with ${second.flags}`).toBeUndefined();
        expect(second.flags).not.toMatch(/TRUNC/);
        expect(second.firstOffset).toBe(HALF.length);
        expect(second.highestOffset).toBe(WHOLE.length);
        expect([...(await stagingFiles(dir())).keys()], 'staging files left').toEqual([]);
      });
    }
  });
}

describe('staging files at the server level', () => {
  const mine = `${STAGING_PREFIX}${HOST_TAG}.earlier0run.0123456789ab`;
  const theirs = `${STAGING_PREFIX}${HOST_TAG}-elsewhere.earlier0run.0123456789ab`;
  let root: string;
  let t: TestServer;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'atomic-sweep-'));
    await mkdir(join(root, 'sub/deeper'), { recursive: true });
    await writeFile(join(root, mine), 'cut short at the root');
    await writeFile(join(root, 'sub/deeper', mine), 'cut short deeper');
    await writeFile(join(root, theirs), 'still being written on another host');
    await writeFile(join(root, 'keep.txt'), 'an ordinary file');
    t = await startTestServer({ root, sweepStaged: true });
  });
  afterAll(async () => {
    await t?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("a new server removes this host's staging files of an earlier run, in every directory, and keeps another host's", async () => {
    const left = async () => [...(await readdir(root)), ...(await readdir(join(root, 'sub/deeper')).then((l) => l.map((n) => `sub/deeper/${n}`)))].filter((n) => n.includes(STAGING_PREFIX)).sort();
    await until("the sweep removes this host's leftovers", async () => !(await left()).some((n) => n.endsWith(mine)), 10_000).catch(async (e: Error) => {
      throw new Error(`${e.message}; staging files left: ${(await left()).join(', ')}; server.sweep records: ${t.events.ofType('server.sweep').length}`);
    });
    expect(await left()).toEqual([theirs]);
    expect((await t.events.waitFor('server.sweep', { timeout: 10_000 })).removed).toBe(2);
    expect(await readFile(join(root, theirs), 'utf8'), "the other host's staging file, untouched").toBe('still being written on another host');
  });

  it('a client can neither list nor open, stat, remove or create a staging name: NO_SUCH_FILE', async () => {
    const c = new ssh2.Client();
    try {
      const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => {
        c.on('ready', () => c.sftp((e, w) => (e ? reject(e) : resolve(w)))).on('error', reject);
        c.connect({ ...t.connectOptions });
      });
      const code = (op: (cb: (e: (Error & { code?: number }) | null | undefined) => void) => void) =>
        new Promise<number | 'ok'>((resolve) => op((e) => resolve(e ? (e.code ?? -1) : 'ok')));
      const NO_SUCH_FILE = 2;
      const listed = await new Promise<string[]>((resolve, reject) => sftp.readdir('/', (e, list) => (e ? reject(e) : resolve(list.map((x) => x.filename)))));
      expect(listed, 'the listing of /').toContain('keep.txt');
      expect(listed.filter((n) => n.startsWith(STAGING_PREFIX)), 'staging names listed').toEqual([]);
      expect(await code((cb) => sftp.open(`/${theirs}`, 'r', (e) => cb(e))), 'OPEN for reading').toBe(NO_SUCH_FILE);
      expect(await code((cb) => sftp.open(`/sub/../${theirs}`, 'r+', (e) => cb(e))), 'OPEN for writing, through ..').toBe(NO_SUCH_FILE);
      expect(await code((cb) => sftp.stat(`/${theirs}`, (e) => cb(e))), 'STAT').toBe(NO_SUCH_FILE);
      expect(await code((cb) => sftp.unlink(`/${theirs}`, (e) => cb(e))), 'REMOVE').toBe(NO_SUCH_FILE);
      expect(await code((cb) => sftp.open(`/sub/${STAGING_PREFIX}${HOST_TAG}.x.y`, 'w', (e) => cb(e))), 'OPEN creating a staging name').toBe(NO_SUCH_FILE);
      expect(await code((cb) => sftp.rename('/keep.txt', `/sub/${STAGING_PREFIX}x`, (e) => cb(e))), 'RENAME to a staging name').toBe(NO_SUCH_FILE);
      expect(await readFile(join(root, theirs), 'utf8'), "the other host's staging file, untouched").toBe('still being written on another host');
      expect(await readFile(join(root, 'keep.txt'), 'utf8')).toBe('an ordinary file');
      expect(await readdir(join(root, 'sub'))).toEqual(['deeper']);
    } finally {
      c.end();
    }
  });
});
