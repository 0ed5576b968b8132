/**
 * Running client programs: one-shot commands (`run`), and interactive command-line clients driven one
 * command at a time (`Conversation`: sftp, psftp, lftp), where an echoed marker tells when a command
 * has finished and which output belongs to it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface RunResult {
  code: number | null;
  /** Bytes, as names that are not UTF-8 must survive. */
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs a program to its end; rejects only if it cannot start or outlives `timeoutMs` (killed). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const ms = opts.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: no end after ${ms} ms\nstdout: ${Buffer.concat(out).toString()}\nstderr: ${stderr}`));
    }, ms);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

export interface Reply {
  /** What the client printed for this command (bytes; names that are not UTF-8 survive). */
  out: Buffer;
  err: string;
}

/**
 * An interactive client fed on stdin. `send(command)` writes the command and then `marker(n)`, a
 * command that makes the client print `@@done-n` (e.g. `!echo @@done-n`); everything printed before
 * the marker's output line is the command's reply (a client that echoes commands shows the token
 * inside a line first: only a line that is the token counts). The client must answer in order.
 */
export class Conversation {
  readonly #child: ChildProcessWithoutNullStreams;
  #out = Buffer.alloc(0);
  #err = '';
  #n = 0;
  readonly #exit: Promise<number | null>;
  readonly #prompt: Buffer;
  #wake: (() => void) | undefined;

  /** `prompt`: what the client prints before reading each command, which may precede the marker. */
  constructor(cmd: string, args: readonly string[], private readonly marker: (token: string) => string, opts: { env?: NodeJS.ProcessEnv; cwd?: string; prompt?: string } = {}) {
    this.#prompt = Buffer.from(opts.prompt ?? '');
    this.#child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stdout.on('data', (d: Buffer) => {
      this.#out = Buffer.concat([this.#out, d]);
      this.#wake?.();
    });
    this.#child.stderr.on('data', (d: Buffer) => (this.#err += d.toString()));
    this.#child.stdin.on('error', () => undefined);
    this.#exit = new Promise((resolve) => this.#child.on('close', (code) => {
      resolve(code);
      this.#wake?.();
    }));
  }

  /** Sends one command; resolves with its reply, or rejects if the client exits or stalls first. */
  async send(command: string | Buffer, timeoutMs = 30_000): Promise<Reply> {
    const token = `@@done-${++this.#n}`;
    this.#child.stdin.write(Buffer.concat([Buffer.from(command), Buffer.from(`\n${this.marker(token)}\n`)]));
    const needle = Buffer.from(token + '\n');
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.#exit.then(() => (exited = true));
    for (;;) {
      const at = lineStart(this.#out, needle, this.#prompt);
      if (at >= 0) {
        // Messages on stderr travel in another pipe: let any already written arrive first.
        await new Promise((resolve) => setTimeout(resolve, 20));
        const out = this.#out.subarray(0, at);
        const err = this.#err;
        this.#out = this.#out.subarray(at + needle.length);
        this.#err = '';
        return { out, err };
      }
      if (exited || Date.now() > deadline) {
        throw new Error(`${exited ? 'client exited' : `no reply in ${timeoutMs} ms`} after ${JSON.stringify(command.toString())}\nstdout: ${this.#out.toString().slice(-2000)}\nstderr: ${this.#err.slice(-2000)}`);
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  }

  /** Closes stdin and waits for the client to exit (killed after `timeoutMs`). */
  async close(timeoutMs = 10_000): Promise<number | null> {
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.#exit;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Index of `needle` where it starts a line (after the prompt, if the client printed one), or -1. */
function lineStart(haystack: Buffer, needle: Buffer, prompt: Buffer): number {
  const starts = (i: number) => i === 0 || haystack[i - 1] === 0x0a;
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) {
    if (starts(at)) return at;
    const p = at - prompt.length;
    if (prompt.length && p >= 0 && starts(p) && haystack.subarray(p, at).equals(prompt)) return at;
  }
  return -1;
}
