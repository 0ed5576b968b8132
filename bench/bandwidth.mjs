#!/usr/bin/env node
// Bandwidth limits measured with the stock OpenSSH sftp client against the built daemon (dist/).
// No root needed: one sftp-chroot on 127.0.0.1, two users in temporary roots under /tmp.
//
//   node bench/bandwidth.mjs                      user "slow" at 2 MiB/s each way, 20 MiB files
//   node bench/bandwidth.mjs --rate=4MiB --size=40
//   node bench/bandwidth.mjs --instances=2        also: N instances on one root sharing a redis-server
//
// Prints: the limited user's upload and download rate vs the limit (one session, then two sessions
// sharing it), and the unlimited user's speed alone vs alongside the limited one. With --instances=N
// (needs redis-server): one upload by "slow" on each of N instances at once, first sharing the
// limit through config "shared", then without it (each instance then allows the whole limit).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib/measure.mjs';
import { liveClients, SftpSession } from './lib/openssh-client.mjs';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const rateText = arg('rate', '2MiB');
const sizeMiB = Number(arg('size', '20'));
const fastMiB = Number(arg('fast-size', '200'));
const reps = Number(arg('reps', '5'));
const instances = Number(arg('instances', '0'));

const base = mkdtempSync(join(tmpdir(), 'bench-bandwidth-'));
let server;
const extra = new Set();
const cleanup = () => {
  for (const p of liveClients) p.kill('SIGKILL');
  server?.kill('SIGKILL');
  for (const p of extra) p.kill('SIGKILL');
  rmSync(base, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

function keygen(name) {
  const file = join(base, name);
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  return file;
}

async function startServer() {
  const hostKey = keygen('host_key');
  const clientKey = keygen('client_key');
  const pub = readFileSync(`${clientKey}.pub`, 'utf8').trim();
  for (const d of ['slow', 'fast', 'local']) mkdirSync(join(base, d));
  writeFileSync(join(base, 'local/small.bin'), randomBytes(sizeMiB * MiB));
  writeFileSync(join(base, 'local/big.bin'), randomBytes(fastMiB * MiB));
  // Files to download, on the server side.
  writeFileSync(join(base, 'slow/down.bin'), randomBytes(sizeMiB * MiB));
  writeFileSync(join(base, 'fast/down.bin'), randomBytes(fastMiB * MiB));
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    hostKeys: [hostKey],
    users: [
      { username: 'slow', authorizedKeys: [pub], root: join(base, 'slow'), bandwidth: { uploadBytesPerSecond: rateText, downloadBytesPerSecond: rateText } },
      { username: 'fast', authorizedKeys: [pub], root: join(base, 'fast') },
    ],
    log: { level: 'silent' },
    shutdownGraceSeconds: 1,
  };
  const { proc, port } = await launch(config, 'config.json');
  server = proc;
  const knownHosts = join(base, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, 'utf8').trim()}\n`);
  return { port, key: clientKey, knownHosts, config, hostKey };
}

/** Starts the built daemon on `config`; resolves with its port once it listens. */
async function launch(config, name) {
  writeFileSync(join(base, name), JSON.stringify(config, null, 2));
  const proc = spawn(process.execPath, [join(repoRoot, 'dist/cli.js'), '--config', join(base, name)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const port = await new Promise((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      err += d;
      const m = /listening on [^\s]+:(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (code) => reject(new Error(`sftp-chroot exited ${code}:\n${err}`)));
  });
  return { proc, port };
}

/** N more instances of the first one's config (same root), with `shared` or without; one upload by "slow" on each at once. */
async function acrossInstances(target, shared) {
  const procs = [];
  const targets = [];
  for (let i = 0; i < instances; i++) {
    const config = { ...target.config, ...(shared ? { shared } : {}), serverName: `bench-${i}` };
    const { proc, port } = await launch(config, `instance-${i}.json`);
    procs.push(proc);
    extra.add(proc);
    const knownHosts = join(base, `known_hosts_${i}`);
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${readFileSync(`${target.hostKey}.pub`, 'utf8').trim()}\n`);
    targets.push({ port, key: target.key, knownHosts });
  }
  const seconds = Math.max(...(await Promise.all(targets.map((t, i) => transfer(t, 'slow', `put ${local('small.bin')} inst${i}.bin`)))));
  for (const p of procs) {
    p.kill('SIGKILL');
    extra.delete(p);
  }
  return seconds;
}

/** A private redis-server on a unix socket under the bench folder. */
async function startRedis() {
  const socket = join(base, 'redis.sock');
  const proc = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no', '--dir', base], { stdio: 'ignore' });
  extra.add(proc);
  await new Promise((resolve, reject) => {
    proc.once('error', (e) => reject(new Error(`--instances needs redis-server (apt-get install redis-server): ${e.message}`)));
    const poll = () => (existsSync(socket) ? resolve() : setTimeout(poll, 20));
    poll();
  });
  return `unix://${socket}`;
}

const mib = (bytes, seconds) => bytes / MiB / seconds;
const fmt = (x) => x.toFixed(2).padStart(8);

async function transfer(target, username, cmd) {
  const s = await SftpSession.open({ ...target, username });
  const { seconds } = await s.command(cmd);
  await s.close();
  return seconds;
}

const local = (f) => join(base, 'local', f);

async function main() {
  const target = await startServer();
  const small = sizeMiB * MiB;
  const big = fastMiB * MiB;
  console.log(`limit for "slow": ${rateText}/s each way; ${sizeMiB} MiB per limited transfer, ${fastMiB} MiB per unlimited one\n`);

  const up = await transfer(target, 'slow', `put ${local('small.bin')} up.bin`);
  const down = await transfer(target, 'slow', `get down.bin ${local('got.bin')}`);
  console.log(`slow, one session:   upload ${fmt(mib(small, up))} MiB/s in ${up.toFixed(2)} s   download ${fmt(mib(small, down))} MiB/s in ${down.toFixed(2)} s   (limit ${rateText}/s)`);

  const pair = await Promise.all([0, 1].map((i) => transfer(target, 'slow', `put ${local('small.bin')} pair${i}.bin`)));
  const pairSeconds = Math.max(...pair);
  console.log(`slow, two sessions:  upload ${fmt(mib(2 * small, pairSeconds))} MiB/s together in ${pairSeconds.toFixed(2)} s (shared limit)`);

  // Alternating, so drift on a shared machine hits both: the limited user keeps an upload and a
  // download running during every "beside" round.
  const alone = { up: [], down: [] };
  const beside = { up: [], down: [] };
  const round = async (into) => {
    into.up.push(await transfer(target, 'fast', `put ${local('big.bin')} up.bin`));
    into.down.push(await transfer(target, 'fast', `get down.bin ${local('fast.bin')}`));
  };
  for (let i = 0; i < reps; i++) {
    await round(alone);
    let busy = true;
    const keepBusy = async (cmd) => {
      while (busy) await transfer(target, 'slow', cmd);
    };
    const background = [keepBusy(`put ${local('small.bin')} bg.bin`), keepBusy(`get down.bin ${local('bg.bin')}`)];
    await round(beside);
    busy = false;
    await Promise.all(background);
  }
  const m = (xs) => mib(big, median(xs));
  console.log(`fast, alone:         upload ${fmt(m(alone.up))} MiB/s   download ${fmt(m(alone.down))} MiB/s   (median of ${reps})`);
  console.log(`fast, beside slow:   upload ${fmt(m(beside.up))} MiB/s   download ${fmt(m(beside.down))} MiB/s   (median of ${reps}; slow uploading and downloading meanwhile)`);
  if (instances < 2) return;
  const redis = await startRedis();
  const withStore = await acrossInstances(target, { redis, keyPrefix: `bench-${process.pid}:` });
  console.log(`slow, ${instances} instances sharing a store: upload ${fmt(mib(instances * small, withStore))} MiB/s together in ${withStore.toFixed(2)} s (limit ${rateText}/s)`);
  const without = await acrossInstances(target, undefined);
  console.log(`slow, ${instances} instances, no store:      upload ${fmt(mib(instances * small, without))} MiB/s together in ${without.toFixed(2)} s (each instance allows the limit)`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
