#!/usr/bin/env node
// Start-up cost of the test double, as a test author meets it:
//   1. time from calling startTestServer() to the first successful ssh2-sftp-client list('/')
//      (stock client: default socket, Nagle on), over RUNS runs: median and p95, with the phases;
//   2. RSS of 50 instances alive at once in one process (each with its own file fixture, each
//      checked to list only its own files), and RSS after closing them all.
//
//   npm run bench:start                 (builds dist/ first)
//   node --expose-gc bench/test-server-start.mjs [--runs=40] [--instances=50] [--json]
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import SftpClient from 'ssh2-sftp-client';
import { startTestServer } from '../dist/testing.js';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name, dflt) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : dflt;
};
const RUNS = arg('runs', 40);
const INSTANCES = arg('instances', 50);
const MiB = 1024 * 1024;

const now = () => performance.now();
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => {
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const p95 = (xs) => sorted(xs)[Math.min(xs.length - 1, Math.ceil(0.95 * xs.length) - 1)];
const ms = (x) => `${x.toFixed(1)} ms`;

async function settle() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  return process.memoryUsage();
}

async function oneRun() {
  const t0 = now();
  const s = await startTestServer({ files: { 'hello.txt': 'hi\n' } });
  const t1 = now();
  const c = new SftpClient();
  try {
    await c.connect(s.connectOptions);
    const t2 = now();
    const list = await c.list('/');
    const t3 = now();
    if (!list.some((e) => e.name === 'hello.txt')) throw new Error('fixture missing from list("/")');
    return { total: t3 - t0, start: t1 - t0, connect: t2 - t1, list: t3 - t2 };
  } finally {
    await c.end().catch(() => undefined);
    await s.close();
  }
}

async function startup(cold) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await oneRun());
  const pick = (k) => runs.map((r) => r[k]);
  return {
    runs: RUNS,
    cold,
    median: { total: median(pick('total')), start: median(pick('start')), connect: median(pick('connect')), list: median(pick('list')) },
    p95: { total: p95(pick('total')), start: p95(pick('start')), connect: p95(pick('connect')), list: p95(pick('list')) },
    min: Math.min(...pick('total')),
    max: Math.max(...pick('total')),
  };
}

async function many() {
  const before = await settle();
  const t0 = now();
  const servers = await Promise.all(
    Array.from({ length: INSTANCES }, (_, i) => startTestServer({ files: { [`only-${i}.txt`]: `instance ${i}\n`, [`dir-${i}/nested.txt`]: 'x' } })),
  );
  const startedMs = now() - t0;
  const afterStart = await settle();

  // Each instance must list exactly its own fixture.
  let checked = 0;
  const t1 = now();
  for (const [i, s] of servers.entries()) {
    const c = new SftpClient();
    try {
      await c.connect(s.connectOptions);
      const names = (await c.list('/')).map((e) => e.name).sort();
      const want = [`dir-${i}`, `only-${i}.txt`];
      if (JSON.stringify(names) !== JSON.stringify(want)) throw new Error(`instance ${i} lists ${JSON.stringify(names)}, expected ${JSON.stringify(want)}`);
      checked++;
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  const listedMs = now() - t1;
  const afterList = await settle();

  const t2 = now();
  await Promise.all(servers.map((s) => s.close()));
  const closedMs = now() - t2;
  const afterClose = await settle();
  return {
    instances: INSTANCES,
    checked,
    startedMs,
    listedMs,
    closedMs,
    rss: { before: before.rss, afterStart: afterStart.rss, afterList: afterList.rss, afterClose: afterClose.rss },
    heapUsed: { before: before.heapUsed, afterStart: afterStart.heapUsed, afterList: afterList.heapUsed, afterClose: afterClose.heapUsed },
    external: { before: before.external + before.arrayBuffers, afterStart: afterStart.external + afterStart.arrayBuffers, afterClose: afterClose.external + afterClose.arrayBuffers },
    gc: typeof globalThis.gc === 'function',
  };
}

const when = new Date();
// The first run pays the one-time warm-up (lazy modules, native addon, JIT); the 50-instance
// memory test comes next, before 40 more start/close cycles could pre-grow the heap.
const cold = await oneRun();
const m = await many();
const s = await startup(cold);
const mib = (b) => `${(b / MiB).toFixed(1)} MiB`;
const lines = [
  `test double start-up, ${when.toISOString()}, Node ${process.version}, ${cpus().length} vCPU`,
  '',
  `startTestServer() → first ssh2-sftp-client list('/') (stock client, Nagle on), ${s.runs} runs after 1 cold run:`,
  `  total    median ${ms(s.median.total)}, p95 ${ms(s.p95.total)}  (min ${ms(s.min)}, max ${ms(s.max)}; cold first run ${ms(s.cold.total)})`,
  `  phases   start ${ms(s.median.start)} (p95 ${ms(s.p95.start)}), connect ${ms(s.median.connect)} (p95 ${ms(s.p95.connect)}), list ${ms(s.median.list)} (p95 ${ms(s.p95.list)})`,
  '',
  `${m.instances} instances alive at once in one process${m.gc ? ' (RSS after forced GC)' : ' (run with --expose-gc for steadier RSS)'}:`,
  `  RSS before ${mib(m.rss.before)}, after starting ${m.instances} in parallel ${mib(m.rss.afterStart)} (+${mib(m.rss.afterStart - m.rss.before)}, ${((m.rss.afterStart - m.rss.before) / m.instances / 1024).toFixed(0)} KiB per instance; started in ${ms(m.startedMs)})`,
  `  JS heap used ${mib(m.heapUsed.before)} → ${mib(m.heapUsed.afterStart)} (+${((m.heapUsed.afterStart - m.heapUsed.before) / m.instances / 1024).toFixed(0)} KiB per instance) → ${mib(m.heapUsed.afterList)} after one session each → ${mib(m.heapUsed.afterClose)} after close`,
  `  each instance listed only its own files: ${m.checked}/${m.instances} (sequential connect + list: ${ms(m.listedMs)}); RSS then ${mib(m.rss.afterList)}`,
  `  after closing all (${ms(m.closedMs)}): RSS ${mib(m.rss.afterClose)} (${m.rss.afterClose >= m.rss.before ? '+' : ''}${mib(m.rss.afterClose - m.rss.before)} vs before)`,
];
console.log(lines.join('\n'));
if (process.argv.includes('--json')) {
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `start-${when.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ date: when.toISOString(), node: process.version, startup: s, instances: m, text: lines.join('\n') }, null, 2) + '\n');
  console.log(`\nJSON: ${file}`);
}
if (m.checked !== m.instances) process.exitCode = 1;
