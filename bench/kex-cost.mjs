#!/usr/bin/env node
// Login cost per key exchange: N sequential logins with ssh2's Client against the built server
// (dist/, the test double in a child process), one row per kex: mean and median wall time per
// login, and the CPU time the server process and the client process spent per login.
// A login = TCP connect (NODELAY socket) + key exchange + password auth + SFTP channel + readdir /
// + disconnect. The server offers every kex under test (this script puts them into the built
// server's kex list through config.algorithms in the child); the client names one kex per row.
//
//   npm run build && node bench/kex-cost.mjs [--n=30] [--warmup=3] [--kex=name,name] [--json]
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import { createDiffieHellmanGroup, createECDH, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';

const KEXES = [
  'mlkem768x25519-sha256',
  'curve25519-sha256',
  'ecdh-sha2-nistp256',
  'diffie-hellman-group14-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
];

const opt = (name, dflt) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};

// ---- server (child process) ----------------------------------------------------------------

async function serve() {
  const { PROFILES } = await import('../dist/ssh/algorithms.js');
  const { startTestServer } = await import('../dist/testing.js');
  const kexes = JSON.parse(opt('offer', '[]'));
  const kex = [...new Set([...kexes, ...PROFILES.compatible.kex])];
  const s = await startTestServer({ files: { 'a.txt': 'a\n', 'b.txt': 'b\n', 'dir/': null }, config: { algorithms: { profile: 'compatible', kex } } });
  process.on('message', async (m) => {
    if (m === 'cpu') process.send({ cpu: process.cpuUsage() });
    if (m === 'stop') {
      await s.close();
      process.exit(0);
    }
  });
  process.send({ ready: { port: s.port, username: s.username, password: s.password } });
}

// ---- the server's key-exchange arithmetic alone (this process) ----------------------------

// What the server computes per exchange, without host-key signature, packets or auth: for the
// hybrid, ssh2's own serverReply() (ML-KEM encapsulation + X25519 + SHA-256); for the others, a
// fresh key pair and the shared secret, as ssh2's kex.js does with node:crypto.
function serverArithmetic() {
  const hybrid = createRequire(import.meta.url)('ssh2/lib/protocol/mlkem768x25519.js');
  const noble = hybrid.getProvider(true);
  const x25519 = () => generateKeyPairSync('x25519');
  const modp = (group) => {
    const peer = createDiffieHellmanGroup(group).generateKeys();
    return () => {
      const dh = createDiffieHellmanGroup(group);
      dh.generateKeys();
      dh.computeSecret(peer);
    };
  };
  const cInit = hybrid.clientInit(noble).init;
  const peer25519 = x25519().publicKey;
  const peerP256 = createECDH('prime256v1').generateKeys();
  return {
    'mlkem768x25519-sha256': () => hybrid.serverReply(noble, cInit),
    'curve25519-sha256': () => diffieHellman({ privateKey: x25519().privateKey, publicKey: peer25519 }),
    'ecdh-sha2-nistp256': () => {
      const e = createECDH('prime256v1');
      e.generateKeys();
      e.computeSecret(peerP256);
    },
    'diffie-hellman-group14-sha256': modp('modp14'),
    'diffie-hellman-group16-sha512': modp('modp16'),
    'diffie-hellman-group18-sha512': modp('modp18'),
  };
}

function timeOp(fn, minMs = 300) {
  for (let i = 0; i < 5; i++) fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    fn();
    n++;
  }
  return (performance.now() - t0) / n;
}

// ---- client (this process) -----------------------------------------------------------------

function ask(child, msg, key) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m && key in m) {
        child.off('message', on);
        resolve(m[key]);
      }
    };
    child.on('message', on);
    if (msg) child.send(msg);
  });
}

function login(target, kex) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: target.port });
    sock.setNoDelay(true); // ssh2's Client leaves Nagle on; measure the kex, not delayed ACKs
    const c = new ssh2.Client();
    let negotiated;
    const fail = (err) => {
      c.end();
      sock.destroy();
      reject(err);
    };
    c.on('handshake', (n) => (negotiated = n.kex));
    c.on('error', fail);
    c.on('ready', () =>
      c.sftp((err, sftp) => {
        if (err) return fail(err);
        sftp.readdir('/', (e, list) => {
          if (e) return fail(e);
          if (list.length !== 3) return fail(new Error(`readdir / gave ${list.length} entries`));
          c.on('close', () => (negotiated === kex ? resolve() : reject(new Error(`negotiated ${negotiated}`))));
          c.end();
        });
      }),
    );
    c.connect({ sock, username: target.username, password: target.password, algorithms: { kex: [kex] } });
  });
}

const cpuMs = (a, b) => (b.user - a.user + b.system - a.system) / 1000;

async function row(child, target, kex, n, warmup) {
  try {
    for (let i = 0; i < warmup; i++) await login(target, kex);
  } catch (err) {
    return { kex, error: err.message };
  }
  const walls = [];
  const server0 = await ask(child, 'cpu', 'cpu');
  const client0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await login(target, kex);
    walls.push(performance.now() - t);
  }
  const client1 = process.cpuUsage();
  const server1 = await ask(child, 'cpu', 'cpu');
  walls.sort((a, b) => a - b);
  return {
    kex,
    logins: n,
    wallMeanMs: walls.reduce((s, x) => s + x, 0) / n,
    wallMedianMs: walls[n >> 1],
    serverCpuMs: cpuMs(server0, server1) / n,
    clientCpuMs: cpuMs(client0, client1) / n,
  };
}

async function main() {
  const n = Number(opt('n', '30'));
  const warmup = Number(opt('warmup', '3'));
  const kexes = opt('kex', KEXES.join(',')).split(',');
  const { SUPPORTED_KEX } = await import('ssh2/lib/protocol/constants.js').then((m) => m.default ?? m);
  const offer = kexes.filter((k) => SUPPORTED_KEX.includes(k));
  const child = fork(fileURLToPath(import.meta.url), ['--serve', `--offer=${JSON.stringify(offer)}`]);
  const target = await ask(child, undefined, 'ready');
  const rows = [];
  try {
    // V8 optimises the login path after a few logins: warm up once before the first row.
    for (let i = 0; i < 2 * warmup; i++) await login(target, 'curve25519-sha256');
    for (const kex of kexes) {
      rows.push(offer.includes(kex) ? await row(child, target, kex, n, warmup) : { kex, error: 'not in ssh2 SUPPORTED_KEX' });
    }
  } finally {
    child.send('stop');
  }
  const ops = serverArithmetic();
  const arithmetic = kexes.filter((k) => k in ops).map((kex) => ({ kex, serverMs: timeOp(ops[kex]) }));
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ node: process.version, cpu: cpus()[0]?.model, n, warmup, rows, arithmetic }, null, 2));
    return;
  }
  const f = (x) => x.toFixed(1).padStart(8);
  console.log(`# ${n} sequential logins per kex (after ${warmup} warm-up), Node ${process.version}, ${cpus()[0]?.model}`);
  console.log(`${'kex'.padEnd(38)} ${'wall mean'.padStart(9)} ${'median'.padStart(8)} ${'srv CPU'.padStart(8)} ${'cli CPU'.padStart(8)}  (ms per login)`);
  for (const r of rows) {
    if (r.error) console.log(`${r.kex.padEnd(38)} fails: ${r.error}`);
    else console.log(`${r.kex.padEnd(38)} ${f(r.wallMeanMs)}  ${f(r.wallMedianMs)} ${f(r.serverCpuMs)} ${f(r.clientCpuMs)}`);
  }
  console.log(`\n# server-side key-exchange arithmetic alone (no signature, packets or auth)`);
  for (const a of arithmetic) console.log(`${a.kex.padEnd(38)} ${a.serverMs.toFixed(3).padStart(8)} ms`);
}

if (process.argv.includes('--serve')) await serve();
else await main();
