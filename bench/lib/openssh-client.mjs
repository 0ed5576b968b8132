// Drives the stock OpenSSH `sftp` client (key authentication, BatchMode, batch commands).
//
// A session is `sftp -b -` reading its batch from a pipe. sftp line-buffers stdout in batch mode,
// so after every command we send `pwd` and wait for its "Remote working directory:" line: the time
// between writing the command and that line is the command's duration, without the login.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { treeCpuSeconds } from './measure.mjs';
import { join } from 'node:path';

const MARK = 'Remote working directory:';

/** Children we started, so a SIGINT handler can stop them. */
export const liveClients = new Set();

/**
 * target: { port, username, key, knownHosts }
 * Returns the argument vector for `sftp` (without -b and destination).
 */
export function sftpArgs(target, { cipher } = {}) {
  const a = [
    '-F', '/dev/null', // no user or system ssh_config
    '-q',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${target.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'LogLevel=ERROR',
    '-i', target.key,
    '-P', String(target.port),
  ];
  if (cipher) a.push('-c', cipher);
  return a;
}

export class SftpSession {
  /** Opens a session and waits until the server answered a first `pwd` (login complete). */
  static async open(target, opts = {}) {
    const s = new SftpSession(target, opts);
    await s.command(null, { timeoutMs: 60_000 });
    return s;
  }

  /**
   * CPU seconds used so far by this client: the `sftp` process and the `ssh` it runs (user + system,
   * from /proc). Shows when a workload is bound by the client rather than the server.
   */
  clientCpuSeconds() {
    return this.proc.pid === undefined ? 0 : treeCpuSeconds(this.proc.pid);
  }

  constructor(target, opts) {
    this.target = target;
    this.stderr = '';
    this.marks = 0;
    this.waiters = [];
    this.lines = 0;
    this.exited = false;
    this.proc = spawn('sftp', [...sftpArgs(target, opts), '-b', '-', `${target.username}@127.0.0.1`], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    liveClients.add(this.proc);
    let tail = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk) => {
      const text = tail + chunk;
      let i = 0;
      for (;;) {
        const j = text.indexOf('\n', i);
        if (j < 0) break;
        const line = text.slice(i, j);
        i = j + 1;
        if (line.startsWith(MARK)) {
          this.marks++;
          this.wake();
        } else if (!line.startsWith('sftp> ')) this.lines++;
      }
      tail = text.slice(i);
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => {
      if (this.stderr.length < 8192) this.stderr += d;
    });
    this.exit = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exited = true;
        this.code = code;
        this.signal = signal;
        liveClients.delete(this.proc);
        this.wake();
        resolve(code);
      });
    });
    this.proc.stdin.on('error', () => undefined); // EPIPE when sftp died; reported via exit
  }

  wake() {
    const still = [];
    for (const w of this.waiters) {
      if (this.marks >= w.want) w.resolve();
      else if (this.exited) w.reject(new Error(`sftp to port ${this.target.port} exited (${this.signal ?? this.code}) during "${w.cmd}": ${this.stderr.trim() || '(no stderr)'}`));
      else still.push(w);
    }
    this.waiters = still;
  }

  /**
   * Runs one batch command; resolves with { seconds, lines } (lines = output lines other than
   * prompts). cmd null only waits for login.
   */
  command(cmd, { timeoutMs = 300_000 } = {}) {
    const want = this.marks + 1;
    this.lines = 0;
    const t0 = process.hrtime.bigint();
    let timer;
    const done = new Promise((resolve, reject) => {
      this.waiters.push({ want, resolve, reject, cmd: cmd ?? '(login)' });
      this.wake();
      // A stalled server must fail the run, not hang it.
      timer = setTimeout(() => {
        this.stderr += `\n(no answer within ${timeoutMs / 1000} s: the server stalled; session killed by the benchmark)`;
        this.kill();
      }, timeoutMs);
    });
    this.proc.stdin.write(cmd === null ? 'pwd\n' : `${cmd}\npwd\n`);
    return done.then(
      () => {
        clearTimeout(timer);
        return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, lines: this.lines };
      },
      (e) => {
        clearTimeout(timer);
        throw e;
      },
    );
  }

  async close() {
    if (!this.exited) this.proc.stdin.end('bye\n');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    const code = await this.exit;
    clearTimeout(timer);
    if (code !== 0) throw new Error(`sftp to port ${this.target.port} exited with ${this.signal ?? code}: ${this.stderr.trim()}`);
  }

  kill() {
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}

/** One whole `sftp -b FILE` run (login + commands + logout); resolves with its wall time. */
export function runBatch(target, batchFile, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn('sftp', [...sftpArgs(target, opts), '-b', batchFile, `${target.username}@127.0.0.1`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.on('exit', () => clearTimeout(timer));
    liveClients.add(p);
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => {
      liveClients.delete(p);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) resolve(seconds);
      else reject(new Error(`sftp -b ${batchFile} to port ${target.port} exited ${code}: ${err.trim()}`));
    });
  });
}

export function writeBatch(dir, name, lines) {
  const f = join(dir, name);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}
