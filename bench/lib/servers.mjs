// The two servers under test, on one shared data directory:
//   OpenSSH: a private sshd (own host key, own port on 127.0.0.1, ChrootDirectory + ForceCommand
//            internal-sftp for the system user "benchuser");
//   sftp-chroot: `node dist/cli.js --config <tmp config>` with a user "benchuser" whose root is the
//            same data directory.
// Everything lives under one temporary directory (a tmpfs mounted for the run when possible) and is
// removed by cleanup(), which is synchronous so that it can run from a signal handler.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { ProcGroup, sleep } from './measure.mjs';

export const BENCH_USER = 'benchuser';

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    // a zombie still answers kill(0); it is dead for our purposes
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, isAlive, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!isAlive()) throw new Error(`server for port ${port} exited during start-up`);
    const ok = await new Promise((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port });
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/**
 * Creates the temporary tree:
 *   BASE/            tmpfs (or a plain directory), root 0755
 *   BASE/etc/        keys, known_hosts, configs, batch files, logs
 *   BASE/jail/       OpenSSH ChrootDirectory: root-owned, 0755
 *   BASE/jail/data/  the user's data, owned by benchuser; sftp-chroot's user root
 *   BASE/client/     client-side download targets
 * ChrootDirectory needs every path component root-owned and not group/world-writable, so BASE
 * is made under /run (not /tmp, which is world-writable).
 */
export function createEnvironment({ tmpfsSize = '3G', log = console.error } = {}) {
  const env = { cleanups: [], notes: [] };
  let parent = '/run';
  const st = statSync(parent);
  if (st.uid !== 0 || (st.mode & 0o022) !== 0) parent = '/var/lib';
  env.base = mkdtempSync(join(parent, 'sftp-chroot-bench-'));
  chmodSync(env.base, 0o755);
  try {
    sh('mount', ['-t', 'tmpfs', '-o', `size=${tmpfsSize},mode=0755`, 'tmpfs', env.base]);
    env.tmpfs = true;
    env.unmount = () => {
      const r = spawnSync('umount', [env.base]);
      if (r.status !== 0) spawnSync('umount', ['-l', env.base]);
    };
  } catch (e) {
    env.tmpfs = false;
    env.notes.push(`tmpfs mount failed (${String(e.stderr || e.message).trim()}); files live on the filesystem of ${parent}`);
    log(`bench: ${env.notes.at(-1)}`);
  }
  env.etc = join(env.base, 'etc');
  env.jail = join(env.base, 'jail');
  env.data = join(env.jail, 'data');
  env.client = join(env.base, 'client');
  for (const d of [env.etc, env.jail, env.data, env.client]) mkdirSync(d, { mode: 0o755 });
  chmodSync(env.jail, 0o755);
  return env;
}

/** Ensures the system user exists, with a non-locked password field ("*") and a nologin shell. */
export function ensureUser(env) {
  const r = spawnSync('id', ['-u', BENCH_USER]);
  if (r.status !== 0) {
    sh('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', BENCH_USER]);
    env.notes.push(`created system user ${BENCH_USER} (removed at the end)`);
    // Last: after the servers that run as it have stopped.
    env.cleanups.push(() => spawnSync('userdel', [BENCH_USER]));
  }
  // With UsePAM no, sshd refuses accounts whose password field starts with "!" (locked).
  const shadow = spawnSync('getent', ['shadow', BENCH_USER], { encoding: 'utf8' }).stdout ?? '';
  if (shadow.split(':')[1]?.startsWith('!')) sh('usermod', ['-p', '*', BENCH_USER]);
  env.uid = Number(sh('id', ['-u', BENCH_USER]).trim());
  env.gid = Number(sh('id', ['-g', BENCH_USER]).trim());
  chownSync(env.data, env.uid, env.gid);
}

export function ensureOpenSsh(log = console.error) {
  if (existsSync('/usr/sbin/sshd') && spawnSync('which', ['sftp']).status === 0) return;
  log('bench: installing openssh-server/openssh-client (apt-get)');
  const r = spawnSync('sh', ['-c', 'apt-get install -y openssh-server openssh-client || (apt-get update && apt-get install -y openssh-server openssh-client)'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0 || !existsSync('/usr/sbin/sshd')) throw new Error('could not install openssh-server; install it and re-run');
}

export function makeKeys(env) {
  for (const name of ['sshd_host_key', 'sftpchroot_host_key', 'client_key']) {
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `bench ${name}`, '-f', join(env.etc, name)]);
  }
  env.clientKey = join(env.etc, 'client_key');
  env.clientPub = readFileSync(`${env.clientKey}.pub`, 'utf8').trim();
  writeFileSync(join(env.etc, 'authorized_keys'), env.clientPub + '\n', { mode: 0o644 });
  env.knownHosts = join(env.etc, 'known_hosts');
  writeFileSync(env.knownHosts, '');
}

function addKnownHost(env, port, pubFile) {
  const [type, blob] = readFileSync(pubFile, 'utf8').trim().split(/\s+/);
  writeFileSync(env.knownHosts, `[127.0.0.1]:${port} ${type} ${blob}\n`, { flag: 'a' });
}

class ServerProcess {
  constructor({ id, label, group, port, env }) {
    Object.assign(this, { id, label, group, port, env });
    this.target = { port, username: BENCH_USER, key: env.clientKey, knownHosts: env.knownHosts };
  }

  alive() {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Server processes right now (root process plus per-connection children). */
  pids() {
    return this.group.pids();
  }

  cpuSeconds() {
    return this.group.cpuSeconds();
  }

  memory() {
    return this.group.memory();
  }

  /** Synchronous stop: SIGTERM the root process, then SIGKILL whatever remains in the group. */
  stopSync() {
    if (!this.proc) return;
    const pids = new Set(this.pids());
    if (this.proc.pid) pids.add(this.proc.pid);
    try { process.kill(this.proc.pid, 'SIGTERM'); } catch { /* gone */ }
    for (let i = 0; i < 40 && [...pids].some(pidAlive); i++) {
      sleepSync(50);
      if (i === 20) for (const p of pids) try { process.kill(p, 'SIGTERM'); } catch { /* gone */ }
    }
    for (const p of pids) if (pidAlive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    for (let i = 0; i < 20 && [...pids].some(pidAlive); i++) sleepSync(50);
    this.proc = undefined;
  }

  logTail() {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  }
}

export async function startSshd(env) {
  ensureOpenSsh();
  if (!existsSync('/run/sshd')) {
    mkdirSync('/run/sshd', { mode: 0o755 });
    env.cleanups.push(() => rmSync('/run/sshd', { recursive: true, force: true }));
  }
  const port = await freePort();
  const conf = join(env.etc, 'sshd_config');
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(env.etc, 'sshd_host_key')}`,
      'PidFile none',
      'UsePAM no',
      // AuthorizedKeysFile is below /run/...; StrictModes would also check /run's parents.
      'StrictModes no',
      'PermitRootLogin no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      `AuthorizedKeysFile ${join(env.etc, 'authorized_keys')}`,
      `AllowUsers ${BENCH_USER}`,
      'PrintMotd no',
      'UseDNS no',
      // 100 idle sessions / 20 concurrent logins: do not drop unauthenticated connections early.
      'MaxStartups 300',
      'Subsystem sftp internal-sftp',
      `Match User ${BENCH_USER}`,
      `  ChrootDirectory ${env.jail}`,
      '  ForceCommand internal-sftp -d /data',
      '  AllowTcpForwarding no',
      '  X11Forwarding no',
      '',
    ].join('\n'),
  );
  const check = spawnSync('/usr/sbin/sshd', ['-t', '-f', conf], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`sshd -t: ${check.stderr.trim()}`);
  const group = new ProcGroup('bench-sshd');
  env.cleanups.unshift(() => group.remove());
  const s = new ServerProcess({ id: 'openssh', label: 'OpenSSH', group, port, env });
  s.logFile = join(env.etc, 'sshd.log');
  const [cmd, args] = group.wrap('/usr/sbin/sshd', ['-D', '-e', '-f', conf]);
  const out = (await import('node:fs')).openSync(s.logFile, 'a');
  s.proc = spawn(cmd, args, { stdio: ['ignore', out, out] });
  group.setRoot(s.proc.pid);
  env.cleanups.unshift(() => s.stopSync());
  try {
    await waitForPort(port, () => s.alive());
  } catch (e) {
    throw new Error(`${e.message}\n${s.logTail()}`);
  }
  addKnownHost(env, port, join(env.etc, 'sshd_host_key.pub'));
  s.version = spawnSync('/usr/sbin/sshd', ['-V'], { encoding: 'utf8' }).stderr.trim();
  return s;
}

/**
 * log: 'file' → log: { file: etc/audit-<id>.json } (level info), 'silent' → log: { level: 'silent' }.
 */
export async function startSftpChroot(env, { id, label, log, repoRoot, cli, extra = {}, user = {} }) {
  const cfgFile = join(env.etc, `${id}.json`);
  const auditFile = join(env.etc, `audit-${id}.json`);
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    hostKeys: [join(env.etc, 'sftpchroot_host_key')],
    users: [{ username: BENCH_USER, authorizedKeys: [env.clientPub], root: env.data, createRoot: false, ...user }],
    log: log === 'file' ? { level: 'info', file: auditFile } : { level: 'silent' },
    // Same admission policy as the private sshd (MaxStartups 300, no per-source penalties).
    limits: { maxStartups: '300', maxConnectionsPerSource: 1000, penalty: { enabled: false } },
    shutdownGraceSeconds: 1,
  };
  for (const [k, v] of Object.entries(extra)) {
    config[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof config[k] === 'object' ? { ...config[k], ...v } : v;
  }
  writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  const group = new ProcGroup(`bench-${id}`);
  env.cleanups.unshift(() => group.remove());
  const s = new ServerProcess({ id, label, group, port: 0, env });
  s.logFile = join(env.etc, `${id}.log`);
  s.auditFile = log === 'file' ? auditFile : undefined;
  const nodeArgs = [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean) : []), cli ?? join(repoRoot, 'dist/cli.js'), '--config', cfgFile];
  const [cmd, args] = group.wrap(process.execPath, nodeArgs);
  s.proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: env.etc });
  group.setRoot(s.proc.pid);
  env.cleanups.unshift(() => s.stopSync());
  const { createWriteStream } = await import('node:fs');
  const logStream = createWriteStream(s.logFile);
  s.proc.stdout.pipe(logStream);
  let err = '';
  s.port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sftp-chroot (${id}) did not report its port in 15 s:\n${err}`)), 15_000);
    s.proc.stderr.on('data', (d) => {
      err += d;
      logStream.write(d);
      const m = /listening on [^\s]+:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    s.proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sftp-chroot (${id}) exited with ${code} during start-up:\n${err}`));
    });
  });
  s.target.port = s.port;
  addKnownHost(env, s.port, join(env.etc, 'sftpchroot_host_key.pub'));
  s.config = config;
  return s;
}

export function cleanupSync(env) {
  if (!env) return;
  const errors = [];
  const steps = [...env.cleanups.splice(0), env.unmount, () => env.base && rmSync(env.base, { recursive: true, force: true })];
  env.unmount = undefined;
  for (const c of steps) {
    if (!c) continue;
    try {
      c();
    } catch (e) {
      errors.push(e.message);
    }
  }
  env.base = undefined;
  return errors;
}
