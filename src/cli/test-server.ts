/**
 * `sftp-chroot test-server`: the test double (startTestServer, the same one `sftp-chroot/testing`
 * exports) as a process, for suites written in other languages. stdout is for programs: line 1 is
 * one JSON object describing the server, then one JSON line per audit record. stderr is for people.
 * It stops on stdin EOF, SIGTERM or SIGINT, removing the root and the key files it wrote.
 */
import { cp, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestServer, type TestServer } from '../testing.js';
import { ConfigError } from '../errors.js';

const EX_USAGE = 64;

export const TEST_SERVER_HELP = `sftp-chroot test-server — the test double (sftp-chroot/testing) as a process, for tests
written in any language.

Usage:
  sftp-chroot test-server [--files DIR] [--user NAME] [--password P] [--port N] [--json]

  --files DIR     copy DIR's contents (files, directories, symlinks as they are) into the root
  --user NAME     the user name (default "tester")
  --password P    the password (default: random)
  --port N        listen on 127.0.0.1:N (default: a free port); always 127.0.0.1 only
  --json          machine mode: nothing on stderr except errors (stdout is the same either way)

stdout is always JSON lines, for programs:
  line 1   one object: host, port, user (and username), password, privateKeyPath (an OpenSSH
           ed25519 key file, mode 0600, authorised for the user), publicKey, knownHosts (the
           known_hosts lines, joined by "\\n"), knownHostsPath (a file holding them),
           hostKeyFingerprint, hostKeys [{ type, fingerprint, publicKey }], root (host path), url
  then     every audit record, one JSON object a line (auth.success, session.open, transfer, …),
           as the in-process double's s.events has them
Read stdout continuously: a full pipe stalls the server.
Without --json a readable summary (how to connect, how to stop) goes to stderr.

It stops when stdin reaches EOF (close the pipe you started it with), or on SIGTERM or SIGINT,
and exits 0 after removing the root and the key files. Keep stdin open while you need it.

Exit codes: 0 stopped cleanly, 1 could not start (e.g. the port is busy), 64 usage error
(unknown option, bad --port, --files not a readable directory, invalid --user).
`;

class UsageError extends Error {}

export interface TestServerArgs {
  help: boolean;
  json: boolean;
  files?: string;
  user?: string;
  password?: string;
  port?: number;
}

export function parseTestServerArgs(argv: readonly string[]): TestServerArgs {
  const args: TestServerArgs = { help: false, json: false };
  const rest = [...argv];
  while (rest.length) {
    const raw = rest.shift()!;
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const a = eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string => {
      const v = eq > 0 ? raw.slice(eq + 1) : rest.shift();
      if (v === undefined) throw new UsageError(`${a} needs a value (see test-server --help)`);
      return v;
    };
    if (a === '-h' || a === '--help') args.help = true;
    else if (a === '--json' && eq < 0) args.json = true;
    else if (a === '--files') args.files = value();
    else if (a === '--user') args.user = value();
    else if (a === '--password') args.password = value();
    else if (a === '--port') {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`--port expects a number from 0 to 65535, got "${v}"`);
      args.port = Number(v);
    } else throw new UsageError(`unknown argument "${raw}" (see test-server --help)`);
  }
  return args;
}

/** --files must name a readable directory; checked before anything starts. */
async function checkFilesDir(dir: string): Promise<string> {
  const path = resolve(dir);
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`--files ${dir}: ${e.code === 'ENOENT' ? 'no such directory' : e.message}`);
  });
  if (!st.isDirectory()) throw new UsageError(`--files ${dir}: not a directory`);
  return path;
}

interface ClientFiles {
  privateKeyPath: string;
  knownHostsPath: string;
}

/** The key and known_hosts files a client outside Node needs, in `dir` (private: mkdtemp makes it 0700). */
async function writeClientFiles(s: TestServer, dir: string): Promise<ClientFiles> {
  const privateKeyPath = join(dir, 'id_ed25519');
  const knownHostsPath = join(dir, 'known_hosts');
  await writeFile(privateKeyPath, s.privateKey.endsWith('\n') ? s.privateKey : s.privateKey + '\n', { mode: 0o600 });
  await writeFile(knownHostsPath, s.knownHosts + '\n', { mode: 0o600 });
  return { privateKeyPath, knownHostsPath };
}

function readyInfo(s: TestServer, f: ClientFiles) {
  return {
    host: s.host,
    port: s.port,
    user: s.username,
    username: s.username,
    password: s.password,
    privateKeyPath: f.privateKeyPath,
    publicKey: s.publicKey,
    knownHosts: s.knownHosts,
    knownHostsPath: f.knownHostsPath,
    hostKeyFingerprint: s.hostKeyFingerprint,
    hostKeys: s.hostKeys,
    root: s.root,
    url: s.url,
  };
}

function summary(info: ReturnType<typeof readyInfo>): string {
  return [
    `sftp-chroot test double listening on 127.0.0.1:${info.port}`,
    `  user "${info.user}", password "${info.password}", key ${info.privateKeyPath}`,
    `  root ${info.root}`,
    `  connect:  sftp -o UserKnownHostsFile=${info.knownHostsPath} -i ${info.privateKeyPath} -P ${info.port} ${info.user}@127.0.0.1`,
    '  stdout: this server as JSON (line 1), then one JSON line per audit record',
    '  stop: Ctrl-C, SIGTERM or EOF on stdin (the root and the key files are removed)',
    '',
  ].join('\n');
}

/** Resolves on the first of stdin EOF, SIGTERM, SIGINT, or a reader that closed our stdout. */
function stopRequested(): Promise<string> {
  return new Promise((resolvePromise) => {
    process.once('SIGTERM', () => resolvePromise('SIGTERM'));
    process.once('SIGINT', () => resolvePromise('SIGINT'));
    process.stdin.once('end', () => resolvePromise('stdin EOF'));
    process.stdin.once('error', () => resolvePromise('stdin error'));
    process.stdout.once('error', () => resolvePromise('stdout closed'));
    process.stdin.resume();
  });
}

const writeLine = (obj: unknown) => process.stdout.writable && process.stdout.write(JSON.stringify(obj) + '\n');

/** Runs the command; resolves with the exit code once everything it created is removed. */
export async function runTestServer(argv: readonly string[]): Promise<number> {
  const fail = (message: string, code: number) => {
    process.stderr.write(`sftp-chroot test-server: ${message}\n`);
    return code;
  };
  let args: TestServerArgs;
  let filesDir: string | undefined;
  try {
    args = parseTestServerArgs(argv);
    if (args.help) {
      process.stdout.write(TEST_SERVER_HELP);
      return 0;
    }
    if (args.files !== undefined) filesDir = await checkFilesDir(args.files);
  } catch (e) {
    if (e instanceof UsageError) return fail(e.message, EX_USAGE);
    throw e;
  }

  // Listening before anything is created, so a signal during the setup still cleans up.
  const stopping = stopRequested();
  let s: TestServer;
  try {
    s = await startTestServer({
      ...(args.user !== undefined ? { username: args.user } : {}),
      ...(args.password !== undefined ? { password: args.password } : {}),
      ...(args.port !== undefined ? { port: args.port } : {}),
    });
  } catch (e) {
    if (e instanceof ConfigError) return fail(e.message, EX_USAGE);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return fail(`cannot listen on 127.0.0.1:${args.port}: address already in use`, 1);
    return fail((e as Error).message, 1);
  }

  let clientDir: string | undefined;
  const stop = async () => {
    await s.close();
    if (clientDir) await rm(clientDir, { recursive: true, force: true });
  };
  try {
    if (filesDir) await cp(filesDir, s.root, { recursive: true, verbatimSymlinks: true });
    clientDir = await mkdtemp(join(tmpdir(), 'sftp-chroot-test-client-'));
    const info = readyInfo(s, await writeClientFiles(s, clientDir));
    writeLine(info);
    if (!args.json) process.stderr.write(summary(info));
  } catch (e) {
    await stop();
    return fail((e as Error).message, 1);
  }

  // Every record, past and future; the iteration ends when the double closes (after server.stop).
  const streamed = (async () => {
    for await (const r of s.events) writeLine(r);
  })();
  await stopping;
  await stop();
  await streamed;
  process.stdin.pause();
  await new Promise<void>((done) => (process.stdout.writable ? process.stdout.write('', () => done()) : done()));
  return 0;
}
