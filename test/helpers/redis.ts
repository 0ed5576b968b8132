/**
 * A private redis-server for a test: on a unix socket in a temporary folder (no TCP port), no
 * persistence. `stop()` kills it (as a crash would), `start()` brings it back on the same socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRedis {
  /** For config "shared.redis". */
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'sftp-redis-'));
  const socket = join(dir, 'redis.sock');
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    const failed = new Promise<never>((_, reject) => proc!.once('error', (e) => reject(new Error(`redis-server cannot start (install it: apt-get install redis-server): ${e.message}`))));
    const deadline = Date.now() + 10_000;
    while (!existsSync(socket)) {
      if (Date.now() > deadline) throw new Error('redis-server did not open its socket within 10 s');
      await Promise.race([new Promise((r) => setTimeout(r, 20)), failed]);
    }
  };
  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    await rm(socket, { force: true });
  };
  await start();
  return {
    url: `unix://${socket}`,
    start,
    stop,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
