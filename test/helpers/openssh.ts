/** Drives the real OpenSSH clients (sftp, scp, ssh) against a server started in this process. */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Target {
  port: number;
  username: string;
  password: string;
  privateKey: string;
  knownHosts: string;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} timed out after ${opts.timeoutMs ?? 20000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 20000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A private key file and known_hosts for one target; removed by cleanup(). */
export async function clientFiles(t: Target): Promise<{ dir: string; key: string; knownHosts: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sftp-chroot-client-'));
  const key = join(dir, 'id');
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(key, t.privateKey, { mode: 0o600 });
  await writeFile(knownHosts, t.knownHosts + '\n');
  return { dir, key, knownHosts, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function sshOptions(files: { key: string; knownHosts: string }, extra: string[] = []): string[] {
  return [
    '-o', `UserKnownHostsFile=${files.knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'LogLevel=ERROR',
    '-F', '/dev/null',
    '-i', files.key,
    ...extra,
  ];
}

/** Runs `sftp -b -` with the given batch commands (key auth). */
export async function sftpBatch(t: Target, commands: string[], opts: { cwd?: string; extra?: string[]; timeoutMs?: number } = {}): Promise<RunResult> {
  const files = await clientFiles(t);
  try {
    const args = [...sshOptions(files, opts.extra), '-P', String(t.port), '-b', '-', `${t.username}@127.0.0.1`];
    const script = (opts.cwd ? [`lcd ${opts.cwd}`] : []).concat(commands).join('\n') + '\n';
    return await run('sftp', args, { input: script, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
  } finally {
    await files.cleanup();
  }
}

export async function scp(t: Target, args: string[]): Promise<RunResult> {
  const files = await clientFiles(t);
  try {
    return await run('scp', [...sshOptions(files), '-P', String(t.port), ...args]);
  } finally {
    await files.cleanup();
  }
}

export async function ssh(t: Target, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const files = await clientFiles(t);
  try {
    return await run('ssh', [...sshOptions(files), '-p', String(t.port), `${t.username}@127.0.0.1`, ...args], { timeoutMs: opts.timeoutMs ?? 15000, env: { ...process.env, ...opts.env } });
  } finally {
    await files.cleanup();
  }
}

/** sshpass + password authentication (no key offered). */
export async function sftpPassword(t: Target, password: string, commands: string[], user = t.username): Promise<RunResult> {
  const files = await clientFiles(t);
  try {
    const args = [
      '-e', 'sftp',
      '-o', `UserKnownHostsFile=${files.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'NumberOfPasswordPrompts=1',
      '-F', '/dev/null', '-P', String(t.port), `${user}@127.0.0.1`,
    ];
    // No -b here: batch mode would forbid password prompts; commands come on stdin instead.
    return await run('sshpass', args, { input: commands.join('\n') + '\n', env: { ...process.env, SSHPASS: password } });
  } finally {
    await files.cleanup();
  }
}
