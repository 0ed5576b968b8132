/**
 * Watching an upload from the server's disk, and running client programs that a test may kill.
 *
 * `watchUpload` looks at one directory over and over while a client uploads into it: the staging
 * files there (src/sftp/staged-upload.ts) and their sizes, and what the final name reads as (the
 * previous content, the new content, absent, or anything else, such as a prefix of the new content).
 * `startClient` spawns a client program; `killTree` kills it and every process it started (sftp's
 * and lftp's ssh) with SIGKILL, by their ids.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { STAGING_PREFIX } from '../../src/sftp/staged-upload.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type Seen = 'before' | 'after' | 'absent' | 'other';

export interface UploadWatch {
  /** A staging file grew between two looks while the final name read as before (or absent, for a new name). */
  readonly grewWhileBefore: boolean;
  /** Size of the largest staging file seen so far. */
  readonly stagingBytes: number;
  /** How often the final name read as each kind. */
  readonly seen: Readonly<Record<Seen, number>>;
  /** The first reads that were neither the previous content nor the whole new one (size, sha256 prefix). */
  readonly others: readonly string[];
  /** Stops looking (after one more look). */
  stop(): Promise<void>;
}

/** Staging files in `dir`, by name, with their sizes. */
export async function stagingFiles(dir: string): Promise<Map<string, number>> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(STAGING_PREFIX));
  const sizes = new Map<string, number>();
  for (const n of names) {
    const size = await stat(join(dir, n)).then((s) => s.size, () => -1);
    if (size >= 0) sizes.set(n, size);
  }
  return sizes;
}

/**
 * Looks at `dir` until stopped. `before`: the final name's content before the upload (null: absent);
 * `after`: the content being uploaded.
 */
export function watchUpload(dir: string, name: string, before: Buffer | null, after: Buffer): UploadWatch {
  const beforeSha = before && sha(before);
  const afterSha = sha(after);
  const seen: Record<Seen, number> = { before: 0, after: 0, absent: 0, other: 0 };
  const others: string[] = [];
  let grewWhileBefore = false;
  let stagingBytes = 0;
  let running = true;
  let previous = new Map<string, number>();

  const classify = async (): Promise<Seen> => {
    const data = await readFile(join(dir, name)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (data === null) return before === null ? 'before' : 'absent';
    const h = sha(data);
    if (h === beforeSha) return 'before';
    if (h === afterSha) return 'after';
    if (others.length < 5) others.push(`${data.length} bytes (${h.slice(0, 12)}…; a prefix of the new content: ${after.subarray(0, data.length).equals(data)})`);
    return 'other';
  };

  const loop = (async () => {
    for (let last = false; !last; ) {
      last = !running;
      const staging = await stagingFiles(dir);
      const kind = await classify();
      seen[kind]++;
      for (const [n, size] of staging) {
        stagingBytes = Math.max(stagingBytes, size);
        if (kind === 'before' && size > (previous.get(n) ?? Infinity)) grewWhileBefore = true;
      }
      previous = staging;
      // The server runs in this process: leave it the event loop between looks.
      await sleep(5);
    }
  })();

  return {
    get grewWhileBefore() {
      return grewWhileBefore;
    },
    get stagingBytes() {
      return stagingBytes;
    },
    seen,
    others,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Polls `cond` every 20 ms until it holds; rejects with `what` after `timeoutMs`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`still not so after ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

export interface ClientRun {
  readonly child: ChildProcessWithoutNullStreams;
  /** Resolves when the program has exited, with its exit code (null when killed) and output. */
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

const running = new Set<ChildProcessWithoutNullStreams>();

/** Spawns a client program; stdin gets `input` and is closed. */
export function startClient(cmd: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): ClientRun {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(opts.input ?? '');
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', (e) => {
      running.delete(child);
      reject(e);
    });
    child.on('close', (code) => {
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, done };
}

/** The ids of `pid`'s descendants (from /proc), deepest last. */
async function descendants(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid > 0) children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
  }
  const out: number[] = [];
  for (let queue = [pid]; queue.length > 0; ) {
    const next = children.get(queue.shift()!) ?? [];
    out.push(...next);
    queue.push(...next);
  }
  return out;
}

/** SIGKILLs a client and every process it started, then waits for it to be gone. */
export async function killTree(run: ClientRun): Promise<void> {
  const pid = run.child.pid;
  if (pid !== undefined && run.child.exitCode === null && run.child.signalCode === null) {
    for (const p of [pid, ...(await descendants(pid))]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  await run.done.catch(() => undefined);
}

/** Kills every client started here that is still running (a test's cleanup). */
export async function killAllClients(): Promise<void> {
  await Promise.all([...running].map((child) => killTree({ child, done: new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r({ code: null, stdout: '', stderr: '' }) : child.once('close', () => r({ code: null, stdout: '', stderr: '' })))) })));
}
