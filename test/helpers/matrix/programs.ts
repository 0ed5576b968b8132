/**
 * The scripted drivers as programs to run: the Python ones as they are (Debian's python3, which has
 * paramiko and asyncssh), the C one (libssh) and the Java one (JSch) compiled at test time into a
 * temporary directory that the caller removes.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { run } from './run.js';
import type { DriverProgram } from './driver.js';

export const DRIVERS = fileURLToPath(new URL('./drivers/', import.meta.url));
const JSCH = '/usr/share/java/jsch.jar';

export function pythonDriver(script: string): DriverProgram {
  // -W ignore: asyncssh's import warns about deprecated ciphers on stderr; no .pyc in the tree.
  return { cmd: '/usr/bin/python3', args: ['-W', 'ignore', join(DRIVERS, script)], env: { PYTHONDONTWRITEBYTECODE: '1' } };
}

async function build(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`building a driver failed: ${cmd} ${args.join(' ')}\n${r.stdout.toString()}${r.stderr}`);
}

/** drivers/libssh_driver.c → outDir/libssh_driver, linked against the system's libssh (pkg-config). */
export async function libsshDriver(outDir: string): Promise<DriverProgram> {
  const exe = join(outDir, 'libssh_driver');
  await build('sh', ['-c', 'cc -O1 -Wall -o "$1" "$2" $(pkg-config --cflags --libs libssh)', 'sh', exe, join(DRIVERS, 'libssh_driver.c')]);
  return { cmd: exe, args: [] };
}

/** drivers/JschDriver.java → outDir/JschDriver.class, against Debian's jsch.jar. */
export async function jschDriver(outDir: string): Promise<DriverProgram> {
  await build('javac', ['-nowarn', '-d', outDir, '-cp', JSCH, join(DRIVERS, 'JschDriver.java')]);
  // A short-lived JVM: the C1 compiler alone and the serial collector start fastest.
  return { cmd: 'java', args: ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-cp', `${outDir}:${JSCH}`, 'JschDriver'] };
}
