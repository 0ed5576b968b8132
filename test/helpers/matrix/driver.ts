/**
 * The scripted drivers (drivers/: paramiko, asyncssh, libssh, JSch) share one command line:
 *
 *   driver --host H --port P --user U --password X --known-hosts F --auth CELL [--key PATH]
 *          --ops a,b,c --local DIR
 *
 * A driver logs in as CELL says (an auth cell, or a driver's own extra one), lists `/`, and prints one
 * JSON line `{"cell": CELL, "ok", "value", "error"}` (value: {method, root: names in /, …}); then for
 * each op it waits for a line on stdin, performs the op and prints one line for it. Waiting lets the
 * harness check the disk after each op and set up the next one while the session stays open.
 *
 * Ops: the op cells of cells.ts, except that non-utf8-name is two ops, `non-utf8-put` (upload both,
 * value: escaped names in /w) and `non-utf8-get` (download the first back, remove both); plus
 * `download-100m`. Local files are named as in cells.ts LOCAL.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Target } from './target.js';

export interface StepLine {
  cell: string;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** How to start one driver: a program and the arguments before the contract's. */
export interface DriverProgram {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

export interface DriverRun {
  auth: string;
  key?: string | undefined;
  ops?: readonly string[];
  local: string;
  env?: NodeJS.ProcessEnv;
}

export class Driver {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: StepLine[] = [];
  #partial = '';
  #stderr = '';
  #exited: string | undefined;
  #wake: () => void = () => undefined;
  readonly #ops: string[];

  constructor(program: DriverProgram, t: Target, run: DriverRun) {
    this.#ops = [...(run.ops ?? [])];
    const args = [
      ...program.args,
      '--host', t.host, '--port', String(t.port), '--user', t.user, '--password', t.password,
      '--known-hosts', t.knownHostsFile, '--auth', run.auth, ...(run.key ? ['--key', run.key] : []),
      '--ops', this.#ops.join(','), '--local', run.local,
    ];
    this.#child = spawn(program.cmd, args, { env: { ...process.env, ...program.env, ...run.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stdout.on('data', (d: Buffer) => {
      const parts = (this.#partial + d.toString()).split('\n');
      this.#partial = parts.pop() ?? '';
      for (const p of parts) if (p.trim()) this.#lines.push(parseLine(p));
      this.#wake();
    });
    this.#child.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    this.#child.stdin.on('error', () => undefined);
    this.#child.on('close', (code, signal) => {
      this.#exited = `exited with ${code ?? signal}`;
      this.#wake();
    });
    this.#child.on('error', (e) => {
      this.#exited = `could not start: ${e.message}`;
      this.#wake();
    });
  }

  /** What the driver wrote on stderr so far (for failure messages). */
  get stderr(): string {
    return this.#stderr;
  }

  /** The login line. */
  login(timeoutMs = 20_000): Promise<StepLine> {
    return this.#next(timeoutMs);
  }

  /**
   * Lets the driver perform `op` and returns its line. Ops listed before it that were never asked
   * for (a failed cell skipped them) are performed first and their lines dropped, as are late lines
   * of earlier ops that timed out.
   */
  async step(op: string, timeoutMs = 60_000): Promise<StepLine> {
    const at = this.#ops.indexOf(op);
    if (at < 0) throw new Error(`op "${op}" is not (or no longer) in the driver's --ops`);
    const skipped = this.#ops.splice(0, at + 1);
    this.#child.stdin.write('go\n'.repeat(skipped.length));
    for (;;) {
      const line = await this.#next(timeoutMs);
      if (line.cell === op || line.cell === '?') return line;
    }
  }

  async close(timeoutMs = 10_000): Promise<void> {
    this.#child.stdin.end();
    if (this.#exited) return;
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    await new Promise<void>((resolve) => this.#child.once('close', () => resolve()));
    clearTimeout(timer);
  }

  async #next(timeoutMs: number): Promise<StepLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.#lines.shift();
      if (line) return line;
      if (this.#exited || Date.now() > deadline) {
        throw new Error(`driver ${this.#exited ?? `gave no line in ${timeoutMs} ms`}; stderr:\n${this.#stderr.slice(-3000)}`);
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 250);
      });
    }
  }
}

function parseLine(text: string): StepLine {
  try {
    return JSON.parse(text) as StepLine;
  } catch {
    return { cell: '?', ok: false, error: `not a JSON line: ${text}` };
  }
}

/** One connection for an auth cell: logs in, lists `/`, ends. */
export async function loginOnce(program: DriverProgram, t: Target, run: DriverRun): Promise<StepLine & { stderr: string }> {
  const d = new Driver(program, t, { ...run, ops: [] });
  try {
    return { ...(await d.login()), stderr: d.stderr };
  } finally {
    await d.close();
  }
}
