/**
 * `MATRIX_TARGET=openssh`: the reference the matrix compares against. A private sshd on 127.0.0.1
 * (its own config, host keys, AuthorizedKeysFile and log, all in one directory removed by close())
 * serving a system user through ChrootDirectory + ForceCommand internal-sftp, with PAM for password
 * and keyboard-interactive logins. Needs root: sshd's chroot rules and PAM want it. The user
 * (`matrixsftp`, no shell) is created once and reused; so is its password, kept root-only beside the
 * instance directories, so that test files running in parallel agree on it.
 */
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import net from 'node:net';
import { makeClientKeys } from './keys.js';
import { run } from './run.js';
import type { Target, TargetFiles } from './target.js';

const USER = 'matrixsftp';
/** Not under /tmp: every component of a ChrootDirectory must be root-owned and not group/world-writable. */
const STATE = '/var/lib/sftp-chroot-matrix';

async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout.toString();
}

/** The system user and its password, created on first use. */
async function systemUser(): Promise<{ uid: number; gid: number; password: string }> {
  if ((await run('id', ['-u', USER])).code !== 0) {
    const r = await run('useradd', ['--system', '--no-create-home', '--home-dir', '/', '--shell', '/usr/sbin/nologin', USER]);
    // Another test file may have created it meanwhile (exit 9: exists).
    if (r.code !== 0 && r.code !== 9) throw new Error(`useradd ${USER}: ${r.stderr}`);
  }
  const uid = Number(await must('id', ['-u', USER]));
  const gid = Number(await must('id', ['-g', USER]));
  const file = join(STATE, 'password');
  await writeFile(file, randomBytes(12).toString('base64url'), { mode: 0o600, flag: 'wx' }).then(
    async () => must('chpasswd', [], `${USER}:${(await readFile(file, 'utf8')).trim()}\n`),
    (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    },
  );
  return { uid, gid, password: (await readFile(file, 'utf8')).trim() };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once the listener sends its SSH banner. */
async function waitForBanner(port: number, exited: () => string | undefined): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const gone = exited();
    if (gone !== undefined) throw new Error(`sshd exited: ${gone}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('SSH-'));
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('sshd did not start listening');
}

const fingerprint = (pubLine: string): string =>
  'SHA256:' + createHash('sha256').update(Buffer.from(pubLine.split(' ')[1] ?? '', 'base64')).digest('base64').replace(/=+$/, '');

function sshdConfig(base: string, port: number): string {
  return [
    'ListenAddress 127.0.0.1',
    `Port ${port}`,
    `HostKey ${base}/ssh_host_ed25519_key`,
    `HostKey ${base}/ssh_host_ecdsa_key`,
    'PidFile none',
    'UsePAM yes',
    'PasswordAuthentication yes',
    'KbdInteractiveAuthentication yes',
    'PubkeyAuthentication yes',
    `AuthorizedKeysFile ${base}/authorized_keys`,
    // The key file's directories are not the user's: sshd's ownership checks do not apply here.
    'StrictModes no',
    `AllowUsers ${USER}`,
    'PermitRootLogin no',
    'MaxAuthTries 10',
    'MaxStartups 100',
    // DEBUG2 logs the signature algorithm of each public-key attempt.
    'LogLevel DEBUG2',
    'Subsystem sftp internal-sftp',
    `ChrootDirectory ${base}/root`,
    'ForceCommand internal-sftp',
    '',
  ].join('\n');
}

async function putFiles(root: string, files: TargetFiles, owner: { uid: number; gid: number }): Promise<void> {
  for (const [vpath, content] of Object.entries(files)) {
    const p = join(root, vpath);
    const dirs: string[] = [];
    for (let d = vpath.endsWith('/') ? p : dirname(p); d.length > root.length; d = dirname(d)) dirs.unshift(d);
    for (const d of dirs) {
      await mkdir(d, { recursive: true });
      await chown(d, owner.uid, owner.gid);
    }
    if (vpath.endsWith('/')) continue;
    await writeFile(p, content);
    await chown(p, owner.uid, owner.gid);
  }
}

export async function startOpenSshTarget(files: TargetFiles): Promise<Target> {
  if (process.getuid?.() !== 0) throw new Error('MATRIX_TARGET=openssh needs root (sshd, ChrootDirectory, PAM)');
  await mkdir(STATE, { recursive: true, mode: 0o755 });
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const user = await systemUser();
  const base = await mkdtemp(join(STATE, 'run-'));
  let sshd: ReturnType<typeof spawn> | undefined;
  try {
    await chmod(base, 0o755);
    const root = join(base, 'root');
    await mkdir(root, { mode: 0o755 });
    const owner = { uid: user.uid, gid: user.gid };
    await putFiles(root, files, owner);

    const keyDir = join(base, 'client-keys');
    await mkdir(keyDir, { mode: 0o700 });
    const keys = await makeClientKeys(keyDir);
    await writeFile(join(base, 'authorized_keys'), keys.authorized.join('\n') + '\n', { mode: 0o644 });
    for (const t of ['ed25519', 'ecdsa']) await must('ssh-keygen', ['-q', '-t', t, '-N', '', '-f', join(base, `ssh_host_${t}_key`)]);
    const hostPubs = await Promise.all(['ed25519', 'ecdsa'].map(async (t) => (await readFile(join(base, `ssh_host_${t}_key.pub`), 'utf8')).split(' ').slice(0, 2).join(' ')));

    const port = await freePort();
    await writeFile(join(base, 'sshd_config'), sshdConfig(base, port));
    const log = join(base, 'sshd.log');
    sshd = spawn('/usr/sbin/sshd', ['-D', '-f', join(base, 'sshd_config'), '-E', log], { stdio: 'ignore' });
    let exit: string | undefined;
    sshd.on('exit', (code, sig) => (exit = `code ${code} signal ${sig}`));
    await waitForBanner(port, () => (exit === undefined ? undefined : `${exit}; log: ${readFileSyncSafe(log)}`));

    const knownHostsFile = join(base, 'known_hosts');
    await writeFile(knownHostsFile, hostPubs.map((p) => `[127.0.0.1]:${port} ${p}`).join('\n') + '\n');
    const child = sshd;
    return {
      kind: 'openssh',
      host: '127.0.0.1',
      port,
      user: USER,
      password: user.password,
      keys,
      knownHostsFile,
      hostKeyFingerprints: Object.fromEntries(hostPubs.map((p) => [p.split(' ')[0]!, fingerprint(p)])),
      root,
      owner,
      signatureAlgorithms: async () => {
        const text = await readFile(log, 'utf8').catch(() => '');
        return [...text.matchAll(/userauth_pubkey: authenticated 1 pkalg (\S+)/g)].map((m) => m[1]!);
      },
      close: async () => {
        child.kill('SIGTERM');
        await rm(base, { recursive: true, force: true });
      },
    };
  } catch (e) {
    sshd?.kill('SIGTERM');
    await rm(base, { recursive: true, force: true });
    throw e;
  }
}

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
