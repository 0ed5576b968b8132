#!/usr/bin/env node
/**
 * The daemon's command line: argv, signals (SIGTERM/SIGINT drain, SIGHUP reload, SIGUSR1 reopen
 * logs) and exit codes (0 ok, 1 failure, 64 usage, 78 bad config).
 */
import { readFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from './errors.js';
import { defaultConfigInput, loadConfigFile, validateConfig, type ServerConfig } from './config/load.js';
import { cryptoBindingAvailable, startServer, type RunningServer } from './server.js';
import { hashPassword } from './ssh/passwords.js';
import { accountRefusal, type AccountRefusal } from './ssh/account.js';
import { configJsonSchema } from './config/json-schema.js';
import { limitsSchema } from './config/schema.js';
import { announceReady, isWorker, startPrimary, workerId, workerPeers, workerSlot, type PrimaryHandle } from './cluster.js';
import { describeHostKey } from './parse/keys.js';
import { HOST_KEY_TYPES, hostKeyFile, writeHostKey, type HostKeyType } from './ssh/host-keys.js';
import { serviceNotifier } from './admin/sd-notify.js';
import { writePidFile } from './admin/pid-file.js';

const EX_USAGE = 64;
const EX_CONFIG = 78;

/** The limits' defaults as the schema has them, so the help cannot drift from them. */
const L = limitsSchema.parse({});
const HELP = `sftp-chroot — an SFTP server that gives every user a private root with chroot semantics,
and logs every transfer.

Usage:
  sftp-chroot [--config FILE] [--host H] [--port N] [--pid-file PATH]
                                       start the server (no config: the embedded demo);
                                       --host/--port override "listen" (port 0 picks a free port);
                                       --pid-file writes the pid once listening, removes it at exit
  sftp-chroot check-config FILE        validate a config (like sshd -t) and exit 0, or 78 listing every problem
  sftp-chroot hash-password            read a password from stdin, print a "passwordHash" value
  sftp-chroot keygen [--type ed25519|ecdsa|rsa] [--out DIR]
                                       write a host key (default keys/ssh_host_<type>_key)
  sftp-chroot schema                   print the config file's JSON Schema (config.schema.json)
  sftp-chroot test-server [--files DIR] [--user NAME] [--password P] [--port N] [--json]
                                       run the test double for tests in other languages: JSON on
                                       stdout, stops on stdin EOF (see test-server --help)
  sftp-chroot --help | --version

Without --config the server runs the embedded default: 127.0.0.1:2222, user "demo" with password
"demo", root ./sandbox (created). Connect with:  sftp -P 2222 demo@127.0.0.1

Config file (JSON; relative paths are relative to the file; see config.example.json):
  listen            { "host": "127.0.0.1", "port": 2222 }
  hostKeys          private key files; when empty, ed25519, ECDSA and RSA keys are used or generated
                    in keysDir ("keys"), as sshd does
  algorithms        "compatible" (default: old clients too), "strict" (ssh-audit clean), or
                    { "profile", "kex": [...], "hostKey": [...], "cipher": [...], "mac": [...] }
  users[]           { "username", "password" | "passwordHash" | "authorizedKeys" | "authorizedKeysFile",
                      "root" (may use %u), "readOnly", "umask" ("0022"), "denyRequests", "allowRequests",
                      "startDirectory", "createRoot", "group", "maxSessions", "allowFrom",
                      "quota": { "bytes", "files" } }
  groups            { "name": { settings users inherit } }
  usersFile         a JSON file holding more users
  log               { "level", "file", "xferlog", "authLog", "hashUploads": "sha256"|"off", "pretty" }
  limits            { "loginGraceSeconds": ${L.loginGraceSeconds}, "maxAuthTries": ${L.maxAuthTries}, "maxStartups": "${L.maxStartups}",
                      "idleTimeoutSeconds": ${L.idleTimeoutSeconds}, "maxSessionsPerUser", "maxHandlesPerSession": ${L.maxHandlesPerSession},
                      "maxInflightBytesPerSession": ${L.maxInflightBytesPerSession},
                      "bandwidth": { "uploadBytesPerSecond", "downloadBytesPerSecond" } (also per user/group), ... }
  shutdownGraceSeconds   how long SIGTERM waits for running transfers (default 30)
  workers           processes sharing the port (node:cluster), default 1; limits and penalties
                    hold across them, /metrics aggregates them
  admin             { "listen": { "host": "127.0.0.1", "port": 9122 } }: /healthz and /metrics
  hooks[]           { "name", "events": ["upload", ...], "users", "groups", "paths",
                      "http": { "url", "secret", ... } | "command": { "argv": [...], ... },
                      "maxBacklog", "retryMaxSeconds" }: notify at least once, stored first
  spoolDir          where undelivered notifications wait (default "spool"; outside every root,
                    best on another filesystem)

Signals: SIGTERM/SIGINT stop accepting and let transfers finish (shutdownGraceSeconds);
SIGHUP reloads the config file (a broken one is refused and the old one keeps serving);
SIGUSR1 reopens log files (logrotate). Under systemd (Type=notify) the daemon reports READY=1 once
it listens, RELOADING=1 around a reload and STOPPING=1 when it drains.

Exit codes: 0 ok, 1 runtime failure, 64 usage error, 78 configuration error.
`;

function fail(message: string, code: number): never {
  process.stderr.write(`sftp-chroot: ${message}\n`);
  process.exit(code);
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

interface Args {
  command: 'start' | 'check-config' | 'hash-password' | 'keygen' | 'schema' | 'help' | 'version';
  config?: string;
  type?: string;
  out?: string;
  host?: string;
  port?: number;
  pidFile?: string;
}

export function parseArgs(argv: string[]): Args {
  const args: Args = { command: 'start' };
  const rest = [...argv];
  const first = rest[0];
  if (first === 'check-config' || first === 'hash-password' || first === 'keygen' || first === 'schema') {
    args.command = first;
    rest.shift();
  }
  while (rest.length) {
    const a = rest.shift()!;
    const value = () => rest.shift() ?? fail(`${a} needs a value (see --help)`, EX_USAGE);
    if (a === '-h' || a === '--help') args.command = 'help';
    else if (a === '-V' || a === '--version') args.command = 'version';
    else if (a === '-c' || a === '--config') args.config = value();
    else if (a.startsWith('--config=')) args.config = a.slice(9);
    else if (a === '--type' || a === '-t') args.type = value();
    else if (a === '--host') args.host = value();
    else if (a === '--pid-file') args.pidFile = resolve(value());
    else if (a.startsWith('--pid-file=')) args.pidFile = resolve(a.slice(11));
    else if (a === '--port' || a === '-p') {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n > 65535) fail(`--port expects a number from 0 to 65535, got "${v}"`, EX_USAGE);
      args.port = n;
    }
    else if (a === '--out' || a === '-o') args.out = value();
    else if (args.command === 'check-config' && !a.startsWith('-') && args.config === undefined) args.config = a;
    else fail(`unknown argument "${a}" (see --help)`, EX_USAGE);
  }
  return args;
}

let listenOverride: { host?: string; port?: number } = {};

function load(file: string | undefined): ServerConfig {
  const c = file === undefined ? validateConfig(defaultConfigInput(), { baseDir: process.cwd() }) : loadConfigFile(resolve(file));
  if (listenOverride.host === undefined && listenOverride.port === undefined) return c;
  return { ...c, listen: { ...c.listen, ...listenOverride } };
}

/** ", 2 with bandwidth limits, server bandwidth limit" for check-config. */
function bandwidthSummary(c: ServerConfig): string {
  const limited = c.users.filter((u) => u.bandwidth?.uploadBytesPerSecond !== undefined || u.bandwidth?.downloadBytesPerSecond !== undefined).length;
  const server = c.limits.bandwidth?.uploadBytesPerSecond !== undefined || c.limits.bandwidth?.downloadBytesPerSecond !== undefined;
  return `${limited ? `, ${limited} with bandwidth limits` : ''}${server ? ', server bandwidth limit' : ''}`;
}

/** ", 1 disabled, 2 expired" for check-config: accounts that cannot log in now. */
function accountSummary(users: ServerConfig['users']): string {
  const count = (r: AccountRefusal) => users.filter((u) => accountRefusal(u) === r).length;
  const [disabled, expired] = [count('account-disabled'), count('account-expired')];
  return `${disabled ? `, ${disabled} disabled` : ''}${expired ? `, ${expired} expired` : ''}`;
}

/** ", 2 with folder rules, shared store redis://10.0.0.5:6379" for check-config (no password shown). */
function rulesAndStoreSummary(c: ServerConfig): string {
  const n = c.users.filter((u) => u.folders !== undefined).length;
  let store = '';
  if (c.shared) {
    const url = c.shared.redis.startsWith('unix://') ? undefined : new URL(c.shared.redis);
    store = `, shared store ${url ? `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}` : c.shared.redis}`;
  }
  return `${n ? `, ${n} with folder rules` : ''}${store}`;
}

/** ", 2 with a quota" for check-config. */
function quotaSummary(users: ServerConfig['users']): string {
  const n = users.filter((u) => u.quota !== undefined).length;
  return n ? `, ${n} with a quota` : '';
}

function loadOrExit(file: string | undefined): ServerConfig {
  try {
    return load(file);
  } catch (e) {
    if (e instanceof ConfigError) fail(`${file ?? 'embedded default config'}: ${e.message}`, EX_CONFIG);
    throw e;
  }
}

async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolvePw) => {
    let pw = '';
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          return resolvePw(pw);
        }
        if (ch === '\u0003') process.exit(130);
        if (ch === '\u007f') pw = pw.slice(0, -1);
        else pw += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function keygen(type = 'ed25519', out = 'keys'): Promise<void> {
  const dir = resolve(out);
  if (!(HOST_KEY_TYPES as readonly string[]).includes(type)) fail(`unknown key type "${type}" (expected ${HOST_KEY_TYPES.join(', ')})`, EX_USAGE);
  const path = join(dir, hostKeyFile(type as HostKeyType));
  if (existsSync(path)) fail(`${path} already exists; remove it first to replace the host key`, 1);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = await writeHostKey(path, type as HostKeyType);
  const info = describeHostKey(pair.private);
  process.stdout.write(`${path}\n${info instanceof Error ? '' : `${info.type} ${info.fingerprint}\n`}`);
}

function readyLines(args: Args, config: ServerConfig, port: number, adminPort: number | undefined, hostKeys: readonly { type: string; fingerprint: string; generated: boolean; path?: string }[]): string {
  const host = config.listen.host;
  const workers = config.workers > 1 ? `, ${config.workers} workers` : '';
  const lines = [`sftp-chroot ${version()} listening on ${host}:${port} (${config.users.length} user${config.users.length === 1 ? '' : 's'}${workers})`];
  if (adminPort !== undefined) lines.push(`  admin http://${config.admin?.listen.host ?? '127.0.0.1'}:${adminPort}/healthz and /metrics`);
  for (const k of hostKeys) lines.push(`  host key ${k.type} ${k.fingerprint}${k.generated ? ` (generated: ${k.path})` : ''}`);
  if (args.config === undefined) {
    const u = config.users[0]!;
    lines.push(`  demo user "${u.username}" (password "demo"), root ${u.root}`);
    lines.push(`  connect:  sftp -P ${port} ${u.username}@${host.includes(':') ? `[${host}]` : host}`);
  }
  return lines.join('\n') + '\n' + slowWarning();
}

function slowWarning(): string {
  return cryptoBindingAvailable()
    ? ''
    : "\n  WARNING: ssh2's native crypto binding is missing: about half the throughput at twice the CPU.\n  Rebuild it with a C compiler, make and python3 installed: npm rebuild ssh2\n\n";
}

/** systemd's notify socket; a worker never speaks to it (NotifyAccess=main). */
const notifier = serviceNotifier({
  env: isWorker() ? {} : process.env,
  onError: (e) => process.stderr.write(`sftp-chroot: sd_notify: ${e.message}\n`),
});

/**
 * Once every listener is up and the signal handlers are in place (a reader of the pid file or
 * systemd may signal at once): the pid file, then READY=1.
 */
function announceListening(args: Args, status: string): void {
  if (args.pidFile !== undefined) {
    try {
      writePidFile(args.pidFile);
    } catch (e) {
      fail(`cannot write the pid file: ${(e as Error).message}`, 1);
    }
  }
  notifier.ready(status);
}

function startFailure(e: unknown, config: ServerConfig): never {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EADDRINUSE') fail(`cannot listen on ${config.listen.host}:${config.listen.port}: address already in use`, 1);
  if (err.code === 'EACCES') fail(`cannot listen on ${config.listen.host}:${config.listen.port}: permission denied`, 1);
  fail(err.message, 1);
}

/** workers > 1: this process forks the workers and relays signals; they serve. */
async function servePrimary(args: Args, config: ServerConfig): Promise<void> {
  let primary: PrimaryHandle;
  try {
    primary = await startPrimary(config);
  } catch (e) {
    startFailure(e, config);
  }
  process.stderr.write(readyLines(args, config, primary.port, primary.adminPort, primary.hostKeys));
  const status = `listening on ${config.listen.host}:${primary.port} (${config.workers} workers)`;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return primary.signal('SIGKILL');
    stopping = true;
    notifier.stopping(`${signal}: draining`);
    process.stderr.write(`sftp-chroot: ${signal}: no new connections; waiting up to ${config.shutdownGraceSeconds}s for transfers\n`);
    primary.signal('SIGTERM');
    void primary.stopped().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGUSR1', () => primary.signal('SIGUSR1'));
  process.on('SIGHUP', () => {
    notifier.reloading();
    try {
      load(args.config);
      primary.signal('SIGHUP');
      notifier.ready(`${status}; configuration reloaded`);
    } catch (e) {
      const msg = e instanceof ConfigError ? e.message : (e as Error).message;
      process.stderr.write(`sftp-chroot: SIGHUP: reload refused, keeping the running config: ${msg}\n`);
      notifier.ready(`${status}; reload refused, running the previous config`);
    }
  });
  announceListening(args, status);
}

async function serve(args: Args): Promise<void> {
  listenOverride = { ...(args.host !== undefined ? { host: args.host } : {}), ...(args.port !== undefined ? { port: args.port } : {}) };
  const config = loadOrExit(args.config);
  const worker = isWorker();
  if (config.workers > 1 && !worker) return servePrimary(args, config);
  let server: RunningServer;
  try {
    server = await startServer(config, worker ? { peers: workerPeers(), metricsOnly: true, auditExtra: { worker: workerId() }, hookSlot: workerSlot(), sweepStaged: workerSlot() === 1 } : {});
  } catch (e) {
    startFailure(e, config);
  }
  const { host, port } = server;
  server.audit.emit({ event: 'server.start', message: `listening on ${host}:${port}`, host, port, users: config.users.length });
  if (worker) announceReady(port);
  else process.stderr.write(readyLines(args, config, port, server.adminPort, server.hostKeys));
  const status = `listening on ${host}:${port}`;
  stopOnSignals(server, config, worker);
  process.on('SIGUSR1', () => server.audit.reopen());
  process.on('SIGHUP', () => reload(server, args, status, worker));
  if (!worker) announceListening(args, status);
}

/** SIGTERM (and SIGINT outside a worker) drains for shutdownGraceSeconds; a second one closes at once. */
function stopOnSignals(server: RunningServer, config: ServerConfig, worker: boolean): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write(`sftp-chroot: ${signal} again, closing now\n`);
      void server.close({ graceMs: 0 }).finally(() => process.exit(0));
      return;
    }
    stopping = true;
    notifier.stopping(`${signal}: draining`);
    if (!worker) process.stderr.write(`sftp-chroot: ${signal}: no new connections; waiting up to ${config.shutdownGraceSeconds}s for transfers\n`);
    void server.close({ graceMs: server.config.shutdownGraceSeconds * 1000 }).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A worker gets Ctrl-C from the terminal too; the primary's SIGTERM is the one that counts.
  process.on('SIGINT', () => (worker ? undefined : stop('SIGINT')));
}

/** SIGHUP: a valid config file replaces the running one; an invalid one is refused and the old one keeps serving. */
function reload(server: RunningServer, args: Args, status: string, worker: boolean): void {
  notifier.reloading();
  try {
    const next = load(args.config);
    void server.reload(next).then(
      () => notifier.ready(`${status}; configuration reloaded`),
      (e: Error) => {
        server.audit.emit({ event: 'server.warning', code: 'reload-failed', message: `reload failed: ${e.message}` });
        notifier.ready(`${status}; reload failed, running the previous config`);
      },
    );
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message : (e as Error).message;
    server.audit.emit({ event: 'server.warning', code: 'reload-refused', message: `reload refused, keeping the running config: ${msg}` });
    if (!worker) process.stderr.write(`sftp-chroot: SIGHUP: reload refused, keeping the running config: ${msg}\n`);
    notifier.ready(`${status}; reload refused, running the previous config`);
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'test-server') {
    // Loaded only here: the daemon never pays for the test double.
    const { runTestServer } = await import('./cli/test-server.js');
    process.exit(await runTestServer(process.argv.slice(3)));
  }
  const args = parseArgs(process.argv.slice(2));
  switch (args.command) {
    case 'help':
      process.stdout.write(HELP);
      return;
    case 'version':
      process.stdout.write(version() + '\n');
      return;
    case 'check-config': {
      if (!args.config) fail('check-config needs a FILE (see --help)', EX_USAGE);
      const c = loadOrExit(args.config);
      const hooks = c.hooks.length ? `, ${c.hooks.length} hook${c.hooks.length === 1 ? '' : 's'}` : '';
      process.stdout.write(`${args.config}: OK (${c.users.length} user${c.users.length === 1 ? '' : 's'}${accountSummary(c.users)}${quotaSummary(c.users)}${bandwidthSummary(c)}${rulesAndStoreSummary(c)}${hooks})\n`);
      for (const w of c.warnings) process.stdout.write(`warning: ${w}\n`);
      return;
    }
    case 'hash-password': {
      const pw = await readSecret('Password: ');
      if (!pw) fail('empty password', EX_USAGE);
      process.stdout.write((await hashPassword(pw)) + '\n');
      return;
    }
    case 'keygen':
      await keygen(args.type, args.out);
      return;
    case 'schema':
      process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
      return;
    case 'start':
      await serve(args);
  }
}

main().catch((e: unknown) => fail(e instanceof Error ? e.message : String(e), 1));
