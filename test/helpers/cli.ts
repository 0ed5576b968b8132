/** Runs the built CLI (dist/cli.js) as a newcomer would, and waits for its ready line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface Daemon {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Waits until the daemon's stdout matches: JSON log records reach it in batches (up to 100 ms). */
export async function stdoutMatches(d: Daemon, re: RegExp, ms = 5000): Promise<string> {
  const end = Date.now() + ms;
  while (!re.test(d.stdout()) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  return d.stdout();
}

/** `wrap` runs the daemon under another command, e.g. ['prlimit', '--nofile=64:64', '--']. */
export function startDaemon(args: string[], cwd: string, timeoutMs = 15000, wrap: string[] = []): Promise<Daemon> {
  const argv = [...wrap, process.execPath, CLI, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no ready line within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
    }, timeoutMs);
    const check = () => {
      const m = /listening on [^\s]+:(\d+)/.exec(err);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        child,
        port: Number(m[1]),
        stdout: () => out,
        stderr: () => err,
        stop: (signal = 'SIGTERM') => {
          child.kill(signal);
          return exited;
        },
      });
    };
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ready\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

export function runCli(args: string[], cwd: string, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
