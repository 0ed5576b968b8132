/**
 * The protocol fuzz run: an in-process server (startTestServer) whose fuzz user's root holds files,
 * directories, a FIFO and symlinks pointing out of the root; a sentinel tree outside the root; one
 * fuzz connection pipelining generated packets (generator.ts) over one SFTP channel at a time; and
 * one "bystander" connection (another user) doing valid work in a loop and checking every result.
 *
 * After every batch: the fuzz channel answers a ping (REALPATH "."), every packet that was owed a
 * reply got exactly one, the bystander saw no error, RSS stays under a bound, nothing outside the
 * root changed (content, mode, times, listings; no fuzz-named file appeared in host directories),
 * and no reply carried the outside secret or a host root path. Uncaught exceptions and unhandled
 * rejections during the run are crashes (the server is in this process).
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  closeSync, constants as FS, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readlinkSync, readSync,
  realpathSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientChannel } from 'ssh2';
import { startTestServer, type TestServer } from '../../src/testing.js';
import { connectClient, parseReply, type Reply } from '../helpers/raw-sftp.js';
import { connect, STATUS, SftpError, type SftpClient } from '../helpers/sftp-client.js';
import { FUZZ_NAMES, PacketGenerator, Rng, retire, T, type Expect, type FuzzContext, type FuzzPacket } from './generator.js';

export interface FuzzOptions {
  seed: number;
  /** Stop after this many fuzz packets ... */
  packets: number;
  /** ... or after this many seconds, whichever comes first. */
  seconds: number;
  /** Packets between two checkpoints (ping + checks). */
  batch?: number;
  /** Most requests awaiting a reply at once (the server refuses more than 256 in flight). */
  window?: number;
  /** RSS may grow this much over the start (MiB). */
  rssGrowthLimitMiB?: number;
  /** Probability per packet of broken SFTP framing (channel reset). */
  framingRate?: number;
  onBatch?: (p: FuzzProgress) => void;
}

export interface FuzzProgress {
  batches: number;
  packets: number;
  elapsedMs: number;
  rssMiB: number;
  channelResets: number;
  bystanderOps: number;
}

export interface Sample {
  what: string;
  kind: string;
  mutation: string;
  expect?: Expect;
  /** Packet bytes as sent (length prefix included), hex, first 512 bytes. */
  hex?: string;
  detail?: string;
}

export interface FuzzFigures {
  seed: number;
  packets: number;
  bytesSent: number;
  batches: number;
  elapsedMs: number;
  packetsPerSecond: number;
  byExpect: Record<string, number>;
  byMutation: Record<string, number>;
  byKind: Record<string, number>;
  /** Replies by type, STATUS replies by code name. */
  replies: Record<string, number>;
  repliesTotal: number;
  channelResets: number;
  /** New fuzz connections (a channel could not be opened on the old one). */
  reconnects: number;
  /** Packets owed a reply that got none by the next checkpoint. */
  missingReplies: number;
  /** Replies carrying an id nobody was waiting for (duplicates, forged ids). */
  unexpectedReplies: number;
  /** Replies that arrived after their checkpoint had already counted them missing. */
  lateReplies: number;
  /** Replies that did not parse, had an invalid status code, or the wrong type for the request. */
  badReplies: number;
  /** A reply that overtook an earlier request's (session promises request order). */
  reorderedReplies: number;
  /** BAD_MESSAGE / OP_UNSUPPORTED from ssh2's parser overtaking in-flight requests (by design). */
  reorderedProtocolErrors: number;
  /** A fatal packet after which the server did not close the channel within 5 s. */
  fatalNotClosed: number;
  pingFailures: number;
  /** Times the window stayed full for 5 s (the oldest request is sampled). */
  slowReplies: number;
  /** Replies received after a framing desync (not accounted). */
  desyncReplies: number;
  bystanderOps: number;
  bystanderErrors: string[];
  startRssMiB: number;
  peakRssMiB: number;
  rssLimitMiB: number;
  rssExceeded: number;
  /**
   * Files in the root that grew past RUNAWAY_BYTES, far beyond what the requests sent can add up to
   * (the generator keeps sizes and offsets small): a runaway write.
   */
  runaways: string[];
  /** Largest file seen in the root (bytes), and whether RLIMIT_FSIZE guarded the disk. */
  largestFile: number;
  fileSizeLimited: boolean;
  /** Times the root was emptied at a checkpoint (more than ROOT_ENTRIES names had piled up). */
  rootWipes: number;
  /** Open file descriptors of this process: at the start, the most seen, and after the fuzz connection closed. */
  fdsStart: number;
  fdsPeak: number;
  fdsEnd: number;
  /** Changes outside the root, secrets or host paths in replies. */
  escapes: string[];
  /** Uncaught exceptions and unhandled rejections. */
  crashes: string[];
  auditEvents: Record<string, number>;
  samples: Sample[];
  /** The requests that took longest to answer (over 500 ms). */
  slowest: { ms: number; kind: string; mutation: string; reply: string; hex: string }[];
  /** Where the time went (ms): channel resets, checkpoints. */
  resetMs: number;
  checkpointMs: number;
}

const MiB = 1024 * 1024;
/**
 * RLIMIT_FSIZE during a run, and the size from which a file in the root counts as a runaway. Files
 * do grow legitimately past a few MiB: WRITEs on APPEND handles and copy-data "to end of file" back
 * and forth add up between root wipes (7.8 and 14.9 MiB seen in 1M-packet runs once the server got ~10×
 * faster). A copy chasing its own tail reaches the cap within one request, so the mark sits far
 * above any legitimate growth and just under the cap.
 */
const FSIZE_LIMIT = 64 * MiB;
const RUNAWAY_BYTES = 48 * MiB;
/** More entries than this in the root at a checkpoint: the root is emptied and the fixtures restored. */
const ROOT_ENTRIES = 400;
const rss = () => process.memoryUsage.rss() / MiB;
const fds = () => readdirSync('/proc/self/fd').length;
const statusName = (c: number) => ['OK', 'EOF', 'NO_SUCH_FILE', 'PERMISSION_DENIED', 'FAILURE', 'BAD_MESSAGE', 'NO_CONNECTION', 'CONNECTION_LOST', 'OP_UNSUPPORTED'][c] ?? `CODE_${c}`;
const REPLY_NAMES: Record<number, string> = { 2: 'VERSION', 101: 'STATUS', 102: 'HANDLE', 103: 'DATA', 104: 'NAME', 105: 'ATTRS', 201: 'EXTENDED_REPLY' };

function withTimeout<V>(p: Promise<V>, ms: number, what: string): Promise<V> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<V>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

// =============================================================================================
// Host layout

interface Layout {
  tmp: string;
  srv: string;
  root: string;
  broot: string;
  outside: string;
  secret: string;
  /** Sentinel paths outside the root (snapshotted). */
  watched: string[];
  /** Host directories where a fuzz-named entry must never appear. */
  noFuzzNames: string[];
  fixtures: Fixture[];
}

type Fixture = { path: string; kind: 'dir' } | { path: string; kind: 'file'; data: Buffer } | { path: string; kind: 'link'; target: string } | { path: string; kind: 'fifo' };

function buildLayout(): Layout {
  const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'sftp-fuzz-')));
  const srv = join(tmp, 'srv');
  const root = join(srv, 'fuzz');
  const broot = join(srv, 'bystander');
  const outside = join(tmp, 'outside');
  const secret = `FUZZ-SECRET-${randomBytes(8).toString('hex')}`;
  for (const d of [root, broot, join(outside, 'dir'), join(srv, 'fuzz2'), join(srv, 'fuzz-x')]) mkdirSync(d, { recursive: true });
  const sentinels = [join(outside, 'secret'), join(outside, 'dir', 'secret'), join(outside, `${secret}.name`), join(srv, 'fuzz2', 'secret'), join(srv, 'fuzz-x', 'secret'), join(broot, 'secret')];
  for (const f of sentinels) writeFileSync(f, `${secret} in ${f}\n`, { mode: 0o644 });
  // atime older than mtime: relatime records the next read of a sentinel through an escape.
  const old = new Date('2001-01-01T00:00:00Z');
  for (const f of sentinels) utimesSync(f, new Date('2000-01-01T00:00:00Z'), old);
  const fixtures: Fixture[] = [
    { path: 'f1', kind: 'file', data: Buffer.from('hello fuzz\n') },
    { path: 'big', kind: 'file', data: randomBytes(300 * 1024) },
    { path: 'dir', kind: 'dir' },
    { path: 'dir/sub', kind: 'dir' },
    { path: 'dir/f2', kind: 'file', data: Buffer.from('f2\n') },
    { path: 'empty-dir', kind: 'dir' },
    { path: 'fifo', kind: 'fifo' },
    { path: 'loop', kind: 'link', target: 'loop' },
    { path: 'dangling', kind: 'link', target: 'nowhere/at/all' },
    { path: 'esc-abs-dir', kind: 'link', target: outside },
    { path: 'esc-abs-file', kind: 'link', target: join(outside, 'secret') },
    { path: 'esc-rel', kind: 'link', target: '../../outside/secret' },
    { path: 'esc-rel-dir', kind: 'link', target: '../../outside' },
    { path: 'esc-deep', kind: 'link', target: '../'.repeat(12) },
    { path: 'esc-root', kind: 'link', target: '/' },
    { path: 'esc-proc', kind: 'link', target: '/proc/self/root' },
    { path: 'esc-etc', kind: 'link', target: '/etc/passwd' },
    { path: 'esc-self-fd', kind: 'link', target: '/proc/self/fd' },
    { path: 'dir/esc-up', kind: 'link', target: '../../../outside' },
  ];
  return {
    tmp, srv, root, broot, outside, secret, fixtures,
    watched: [tmp, srv, outside, join(srv, 'fuzz2'), join(srv, 'fuzz-x'), join(broot, 'secret'), '/etc/passwd', '/etc/hostname'],
    noFuzzNames: ['/', '/tmp', '/etc', tmp, srv, outside, join(outside, 'dir'), broot],
  };
}

/** Puts every fixture back as it was (the fuzzer renames, removes and replaces them). */
function restoreFixtures(l: Layout): number {
  let restored = 0;
  for (const f of l.fixtures) {
    const p = join(l.root, f.path);
    let ok = false;
    try {
      const st = lstatSync(p);
      if (f.kind === 'dir') ok = st.isDirectory();
      else if (f.kind === 'fifo') ok = st.isFIFO();
      else if (f.kind === 'link') ok = st.isSymbolicLink() && readlinkSync(p) === f.target;
      else ok = st.isFile() && st.size === f.data.length;
    } catch {
      ok = false;
    }
    if (ok) continue;
    restored++;
    rmSync(p, { recursive: true, force: true });
    mkdirSync(join(p, '..'), { recursive: true });
    if (f.kind === 'dir') mkdirSync(p);
    else if (f.kind === 'file') writeFileSync(p, f.data);
    else if (f.kind === 'link') symlinkSync(f.target, p);
    else execFileSync('mkfifo', [p]);
  }
  return restored;
}

/** A child path as bytes: the fuzzer makes names that are not UTF-8, which strings would mangle. */
function child(dir: string | Buffer, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(dir), Buffer.from('/'), name]);
}

/** Files the fuzzer grew past `max` bytes are truncated (copy-data could otherwise fill the disk). */
function capSizes(dir: string | Buffer, max: number, depth = 0): number {
  if (depth > 12) return 0;
  let names: Buffer[];
  try {
    names = readdirSync(dir, { encoding: 'buffer' });
  } catch {
    return 0;
  }
  let entries = names.length;
  for (const n of names) {
    const p = child(dir, n);
    try {
      const st = lstatSync(p);
      if (st.isDirectory()) entries += capSizes(p, max, depth + 1);
      else if (st.isFile() && (st.size > max || st.blocks * 512 > max)) truncateSync(p, 0);
    } catch {
      /* gone meanwhile */
    }
  }
  return entries;
}

/** Empties the root (the fixtures are put back next): names the fuzzer made pile up over a long run. */
function wipeRoot(l: Layout): void {
  for (const n of readdirSync(l.root, { encoding: 'buffer' })) rmSync(child(l.root, n), { recursive: true, force: true });
}

/**
 * Caps the size of any file this process writes (RLIMIT_FSIZE; Node ignores SIGXFSZ, so a write
 * past it fails with EFBIG). A safety net for the host disk: a server bug that copies a file onto
 * itself "until end of file" would otherwise grow it until the disk is full. Returns the undo, or
 * undefined where prlimit(1) is missing.
 */
export function limitFileSize(bytes: number): (() => void) | undefined {
  const pid = String(process.pid);
  try {
    const before = execFileSync('prlimit', ['--pid', pid, '--fsize', '--output', 'SOFT', '--noheadings', '--raw'], { encoding: 'utf8' }).trim();
    execFileSync('prlimit', ['--pid', pid, `--fsize=${bytes}:`]);
    return () => execFileSync('prlimit', ['--pid', pid, `--fsize=${before}:`]);
  } catch {
    return undefined;
  }
}

/** The largest regular file under `dir` (no symlinks followed). */
function largestFile(dir: string | Buffer, depth = 0): { path: string; size: number } {
  let best = { path: '', size: -1 };
  if (depth > 12) return best;
  let names: Buffer[];
  try {
    names = readdirSync(dir, { encoding: 'buffer' });
  } catch {
    return best;
  }
  for (const n of names) {
    const p = child(dir, n);
    try {
      const st = lstatSync(p);
      const c = st.isDirectory() ? largestFile(p, depth + 1) : st.isFile() ? { path: p.toString(), size: st.size } : best;
      if (c.size > best.size) best = c;
    } catch {
      /* gone meanwhile */
    }
  }
  return best;
}

function hashNoAtime(p: string): string {
  const fd = openSync(p, FS.O_RDONLY | (FS.O_NOATIME ?? 0));
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/**
 * Signature of each watched path (recursively for the sentinel tree): files by content, mode,
 * size, inode, mtime and atime; directories by listing, mode, inode and mtime (our own readdir
 * moves their atime); symlinks by target.
 */
function snapshot(l: Layout): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (p: string, recurse: boolean) => {
    let st;
    try {
      st = lstatSync(p, { bigint: true });
    } catch (e) {
      out.set(p, `missing ${(e as NodeJS.ErrnoException).code}`);
      return;
    }
    const common = `mode=${st.mode.toString(8)} ino=${st.ino} uid=${st.uid} gid=${st.gid} mtime=${st.mtimeNs}`;
    if (st.isDirectory()) {
      const names = readdirSync(p).sort();
      // The fuzz root and the bystander's root change on purpose: only their presence matters.
      out.set(p, `dir ${common} [${names.join('|')}]`);
      if (recurse) for (const n of names) {
        const c = join(p, n);
        if (c === l.root || c === l.broot) continue;
        visit(c, true);
      }
    } else if (st.isSymbolicLink()) {
      out.set(p, `link ${common} -> ${readlinkSync(p)}`);
    } else if (st.isFile()) {
      out.set(p, `file ${common} size=${st.size} atime=${st.atimeNs} sha256=${hashNoAtime(p)}`);
    } else {
      out.set(p, `other ${common}`);
    }
  };
  for (const p of l.watched) visit(p, p.startsWith(l.tmp) && p !== l.tmp && p !== l.srv);
  // tmp and srv: listing and metadata only; their children are listed above where they matter.
  return out;
}

function diffSnapshots(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${v} => ${b.get(k) ?? 'gone'}`);
  for (const [k, v] of b) if (!a.has(k)) out.push(`${k}: appeared (${v})`);
  return out;
}

function fuzzNamesOutside(l: Layout, before?: Set<string>): Set<string> {
  const found = new Set<string>();
  for (const d of l.noFuzzNames) for (const n of FUZZ_NAMES) {
    const p = join(d, n);
    try {
      lstatSync(p);
      if (!before?.has(p)) found.add(p);
    } catch {
      /* absent: good */
    }
  }
  return found;
}

// =============================================================================================
// One fuzz channel

interface Pending {
  seq: number;
  sentAt: number;
  kind: string;
  mutation: string;
  expect: Expect;
  type: number;
  ext: string | undefined;
  opens: 'file' | 'dir' | undefined;
  bytes: Buffer;
}

class FuzzChannel {
  readonly outstanding = new Map<number, Pending>();
  readonly late = new Set<number>();
  closed = false;
  desynced = false;
  #buf: Buffer = Buffer.alloc(0);
  #wake: (() => void)[] = [];
  #out: Buffer[] = [];
  #outBytes = 0;
  #versionWaiter: ((r: Reply) => void) | undefined;
  #replyWaiters = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  constructor(
    readonly channel: ClientChannel,
    readonly onPayload: (ch: FuzzChannel, payload: Buffer) => Reply | undefined,
  ) {
    channel.on('data', (d: Buffer) => this.#onData(d));
    channel.on('close', () => {
      this.closed = true;
      for (const [, w] of this.#replyWaiters) w.reject(new Error('channel closed'));
      this.#replyWaiters.clear();
      this.#notify();
    });
    channel.on('error', () => undefined);
    channel.stderr?.on('data', () => undefined);
  }

  #notify(): void {
    for (const w of this.#wake.splice(0)) w();
  }
  /** Resolves on the next reply or close. */
  event(): Promise<void> {
    return new Promise((r) => this.#wake.push(r));
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    let p = 0;
    while (this.#buf.length - p >= 4) {
      const len = this.#buf.readUInt32BE(p);
      if (this.#buf.length - p - 4 < len) break;
      const payload = this.#buf.subarray(p + 4, p + 4 + len);
      p += 4 + len;
      if (payload[0] === 2 && this.#versionWaiter) {
        const v = this.#versionWaiter;
        this.#versionWaiter = undefined;
        v(parseReply(Buffer.from(payload)));
        continue;
      }
      const reply = this.onPayload(this, payload);
      if (reply) {
        const w = this.#replyWaiters.get(reply.id);
        if (w) {
          this.#replyWaiters.delete(reply.id);
          w.resolve(reply);
        }
      }
    }
    this.#buf = p === this.#buf.length ? Buffer.alloc(0) : Buffer.from(this.#buf.subarray(p));
    this.#notify();
  }

  /** Queues bytes; flush() writes them as one channel message (fewer SSH packets). */
  queue(b: Buffer): void {
    this.#out.push(b);
    this.#outBytes += b.length;
  }
  get queued(): number {
    return this.#outBytes;
  }
  async flush(): Promise<void> {
    if (this.#out.length === 0 || this.closed) {
      this.#out = [];
      this.#outBytes = 0;
      return;
    }
    const data = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out);
    this.#out = [];
    this.#outBytes = 0;
    if (!this.channel.write(data) && !this.closed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.channel.off('drain', done);
          this.channel.off('close', done);
          resolve();
        };
        this.channel.on('drain', done);
        this.channel.on('close', done);
      });
    }
  }

  waitVersion(ms: number): Promise<Reply> {
    return withTimeout(
      new Promise<Reply>((resolve, reject) => {
        this.#versionWaiter = resolve;
        this.channel.once('close', () => reject(new Error('channel closed before VERSION')));
      }),
      ms,
      'VERSION',
    );
  }
  waitReply(id: number, ms: number): Promise<Reply> {
    return withTimeout(
      new Promise<Reply>((resolve, reject) => {
        if (this.closed) return reject(new Error('channel closed'));
        this.#replyWaiters.set(id, { resolve, reject });
      }),
      ms,
      `reply to id ${id}`,
    ).finally(() => this.#replyWaiters.delete(id));
  }
  async waitClosed(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (!this.closed && Date.now() < until) {
      await Promise.race([this.event(), new Promise((r) => setTimeout(r, 50))]);
    }
    return this.closed;
  }
  /** Waits until nothing is owed a reply (or the channel closed, or `ms` passed). */
  async drain(ms: number): Promise<boolean> {
    await this.flush();
    const until = Date.now() + ms;
    while (this.outstanding.size > 0 && !this.closed && Date.now() < until) {
      await Promise.race([this.event(), new Promise((r) => setTimeout(r, 100))]);
    }
    return this.outstanding.size === 0;
  }
}

// =============================================================================================
// The run

export async function runFuzz(opts: FuzzOptions): Promise<FuzzFigures> {
  const batchSize = opts.batch ?? 500;
  const window = opts.window ?? 128;
  const l = buildLayout();
  const fig: FuzzFigures = {
    seed: opts.seed, packets: 0, bytesSent: 0, batches: 0, elapsedMs: 0, packetsPerSecond: 0,
    byExpect: {}, byMutation: {}, byKind: {}, replies: {}, repliesTotal: 0, channelResets: 0, reconnects: 0,
    missingReplies: 0, unexpectedReplies: 0, lateReplies: 0, badReplies: 0, reorderedReplies: 0, reorderedProtocolErrors: 0,
    fatalNotClosed: 0, pingFailures: 0, slowReplies: 0, desyncReplies: 0, bystanderOps: 0, bystanderErrors: [], startRssMiB: 0, peakRssMiB: 0,
    rssLimitMiB: 0, rssExceeded: 0, escapes: [], crashes: [], auditEvents: {}, samples: [], slowest: [], runaways: [], largestFile: 0, fileSizeLimited: false, rootWipes: 0, fdsStart: 0, fdsPeak: 0, fdsEnd: 0, resetMs: 0, checkpointMs: 0,
  };
  const sampleCounts = new Map<string, number>();
  const sample = (s: Sample) => {
    const n = sampleCounts.get(s.what) ?? 0;
    sampleCounts.set(s.what, n + 1);
    if (n < 5 && fig.samples.length < 200) fig.samples.push(s);
  };
  const bump = (m: Record<string, number>, k: string, by = 1) => (m[k] = (m[k] ?? 0) + by);

  const onCrash = (e: unknown) => {
    fig.crashes.push((e instanceof Error ? e.stack ?? e.message : String(e)).slice(0, 4000));
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  const fuzzPassword = randomBytes(12).toString('base64url');
  const byPassword = randomBytes(12).toString('base64url');
  let server: TestServer | undefined;
  const stop = { done: false };
  let bystanderDone: Promise<void> = Promise.resolve();
  const clients: { end(): void }[] = [];
  const started = Date.now();
  const unlimit = limitFileSize(FSIZE_LIMIT);
  fig.fileSizeLimited = unlimit !== undefined;
  const runawaySeen = new Set<string>();
  const watchSizes = () => {
    const big = largestFile(l.root);
    fig.largestFile = Math.max(fig.largestFile, big.size);
    if (big.size >= RUNAWAY_BYTES && !runawaySeen.has(big.path)) {
      runawaySeen.add(big.path);
      fig.runaways.push(`${big.path.slice(l.root.length)} reached ${(big.size / MiB).toFixed(0)} MiB`);
    }
  };
  const watchdog = setInterval(watchSizes, 100);
  try {
    restoreFixtures(l);
    const namesBefore = fuzzNamesOutside(l);
    const base = snapshot(l);
    server = await startTestServer({
      users: [
        { username: 'fuzz', password: fuzzPassword, root: l.root },
        { username: 'bystander', password: byPassword, root: l.broot },
      ],
    });
    const srvRef = server;
    const secretBuf = Buffer.from(l.secret);
    const hostPathBufs = [Buffer.from(l.root), Buffer.from(l.broot), Buffer.from(l.srv)];

    // ---- bystander
    const by = await connect(server, { username: 'bystander', password: byPassword });
    clients.push({ end: () => void by.end() });
    bystanderDone = runBystander(by, new Rng(opts.seed ^ 0x5bd1e995), fig, stop, [secretBuf, ...hostPathBufs], () => connect(srvRef, { username: 'bystander', password: byPassword }));

    // ---- fuzz connection
    // Without RLIMIT_FSIZE, no copy-data "to end of file": a copy onto the same file would fill the disk.
    const gen = new PacketGenerator(opts.seed, { outsideHostPath: l.outside, user: 'fuzz', copyToEof: fig.fileSizeLimited, ...(opts.framingRate !== undefined ? { framingRate: opts.framingRate } : {}) });
    const ctx: FuzzContext = { fileHandles: [], dirHandles: [], staleHandles: [] };
    let client = await connectClient(server);
    clients.push({ end: () => client.end() });
    let seq = 0;
    let lastReplyAt = Date.now();
    let fresh: { kind: 'file' | 'dir'; handle: Buffer }[] = [];
    const adoptHandles = () => {
      for (const { kind, handle } of fresh) {
        const list = kind === 'file' ? ctx.fileHandles : ctx.dirHandles;
        list.push(handle);
        if (list.length > 24) retire(ctx, list.shift()!);
      }
      fresh = [];
    };

    const onPayload = (ch: FuzzChannel, payloadView: Buffer): Reply | undefined => {
      fig.repliesTotal++;
      for (const b of hostPathBufs) if (payloadView.includes(b)) {
        fig.escapes.push(`host path ${b.toString()} in a reply: ${payloadView.subarray(0, 200).toString('hex')}`);
      }
      if (payloadView.includes(secretBuf)) fig.escapes.push(`outside secret in a reply: ${payloadView.subarray(0, 200).toString('hex')}`);
      let reply: Reply;
      try {
        reply = parseReply(payloadView);
      } catch (e) {
        fig.badReplies++;
        sample({ what: 'unparseable reply', kind: '?', mutation: '?', detail: `${(e as Error).message}: ${payloadView.subarray(0, 256).toString('hex')}` });
        return undefined;
      }
      const key = reply.type === 101 ? `STATUS:${statusName(reply.code ?? -1)}` : REPLY_NAMES[reply.type] ?? `TYPE_${reply.type}`;
      bump(fig.replies, key);
      if (ch.desynced) {
        fig.desyncReplies++;
        return reply;
      }
      const p = ch.outstanding.get(reply.id);
      if (!p) {
        if (ch.late.delete(reply.id)) fig.lateReplies++;
        else {
          fig.unexpectedReplies++;
          sample({ what: 'reply for an id nobody waits for', kind: key, mutation: '?', detail: `id ${reply.id} ${payloadView.subarray(0, 128).toString('hex')}` });
        }
        return reply;
      }
      const first = ch.outstanding.keys().next().value as number;
      if (first !== reply.id) {
        const protocolError = reply.type === 101 && (reply.code === 5 || reply.code === 8);
        if (protocolError) fig.reorderedProtocolErrors++;
        else {
          fig.reorderedReplies++;
          const f = ch.outstanding.get(first)!;
          sample({ what: 'reply overtook an earlier request', kind: p.kind, mutation: p.mutation, hex: p.bytes.toString('hex'), detail: `${key} for id ${reply.id} before the reply to id ${first} (${f.kind}/${f.mutation})` });
        }
      }
      ch.outstanding.delete(reply.id);
      // Replies leave in order, so the time since the previous reply (or since this request was
      // sent, if later) is this request's own cost: keep the slowest few, to name what stalls.
      const now = Date.now();
      const took = now - Math.max(lastReplyAt, p.sentAt);
      lastReplyAt = now;
      if (took > 500 && (fig.slowest.length < 5 || took > fig.slowest[fig.slowest.length - 1]!.ms)) {
        fig.slowest.push({ ms: took, kind: p.kind, mutation: p.mutation, reply: describe(reply), hex: p.bytes.toString('hex') });
        fig.slowest.sort((a, b) => b.ms - a.ms);
        fig.slowest.length = Math.min(fig.slowest.length, 5);
      }
      const bad = checkReply(p, reply);
      if (bad) {
        fig.badReplies++;
        sample({ what: `wrong reply: ${bad}`, kind: p.kind, mutation: p.mutation, expect: p.expect, hex: p.bytes.toString('hex'), detail: describe(reply) });
      }
      // New handles join the context at the next checkpoint, not when their reply happens to
      // arrive: within a batch the generator's choices depend on the seed alone.
      if (reply.type === 102 && reply.handle && p.opens) fresh.push({ kind: p.opens, handle: reply.handle });
      return reply;
    };

    const openChannel = async (): Promise<FuzzChannel> => {
      for (let attempt = 0; ; attempt++) {
        let ch: FuzzChannel;
        try {
          const raw = await withTimeout(
            new Promise<ClientChannel>((resolve, reject) => client.subsys('sftp', (err, c) => (err ? reject(err) : resolve(c)))),
            10_000,
            'sftp channel',
          );
          ch = new FuzzChannel(raw, onPayload);
        } catch (e) {
          if (attempt >= 3) throw e;
          // The connection refuses channels (or is gone): a new connection.
          fig.reconnects++;
          sample({ what: 'new fuzz connection', kind: 'CHANNEL', mutation: '-', detail: (e as Error).message });
          client.end();
          client = await connectClient(srvRef);
          continue;
        }
        const init = gen.init();
        const version = ch.waitVersion(5000);
        ch.queue(init.bytes);
        await ch.flush();
        try {
          await version;
          return ch;
        } catch {
          if (init.valid) {
            sample({ what: 'no VERSION for a valid INIT', kind: 'INIT', mutation: '-', hex: init.bytes.toString('hex') });
            fig.badReplies++;
          }
          ch.channel.close();
          await ch.waitClosed(2000);
        }
      }
    };

    let ch = await openChannel();
    const dropHandles = () => {
      for (const h of [...ctx.fileHandles, ...ctx.dirHandles, ...fresh.map((f) => f.handle)]) retire(ctx, h);
      fresh = [];
      ctx.fileHandles = [];
      ctx.dirHandles = [];
    };
    const resetAfter = async (pkt: FuzzPacket | undefined) => {
      const t0 = Date.now();
      fig.channelResets++;
      if (pkt?.expect === 'fatal') {
        if (!(await ch.waitClosed(5000))) {
          fig.fatalNotClosed++;
          sample({ what: 'fatal packet did not close the channel', kind: pkt.kind, mutation: pkt.mutation, hex: pkt.bytes.subarray(0, 512).toString('hex') });
        }
      } else {
        ch.desynced = true;
      }
      const t1 = Date.now();
      if (!ch.closed) {
        ch.channel.end();
        if (!(await ch.waitClosed(5000))) ch.channel.close();
        await ch.waitClosed(2000);
      }
      const t2 = Date.now();
      // Anything still owed was lost with the channel.
      ch.outstanding.clear();
      dropHandles();
      ch = await openChannel();
      if (process.env.FUZZ_DEBUG) console.log(`reset ${pkt?.mutation}: fatal-wait ${t1 - t0} end-wait ${t2 - t1} open ${Date.now() - t2}`);
      fig.resetMs += Date.now() - t0;
    };

    fig.fdsStart = fds();
    fig.fdsPeak = fig.fdsStart;
    const startRss = rss();
    fig.startRssMiB = startRss;
    fig.peakRssMiB = startRss;
    fig.rssLimitMiB = startRss + (opts.rssGrowthLimitMiB ?? 200);
    const deadline = started + opts.seconds * 1000;

    while (fig.packets < opts.packets && Date.now() < deadline && !stop.done) {
      const n = Math.min(batchSize, opts.packets - fig.packets);
      for (let i = 0; i < n; i++) {
        const pkt = gen.next(ctx);
        fig.packets++;
        fig.bytesSent += pkt.bytes.length;
        bump(fig.byExpect, pkt.expect);
        bump(fig.byMutation, pkt.mutation);
        bump(fig.byKind, pkt.kind);
        if (pkt.expect === 'fatal' || pkt.expect === 'desync') {
          // Settle the accounts first: after this packet the channel is gone.
          await settle(ch, 30_000, 'before a channel reset');
          ch.queue(pkt.bytes);
          await ch.flush();
          await resetAfter(pkt);
          continue;
        }
        if (pkt.id !== undefined) {
          const waitStart = Date.now();
          let reported = false;
          while (ch.outstanding.size >= window && !ch.closed) {
            await ch.flush();
            await Promise.race([ch.event(), new Promise((r) => setTimeout(r, 1000))]);
            if (!reported && Date.now() - waitStart > 5000) {
              reported = true;
              fig.slowReplies++;
              const [oid, op] = ch.outstanding.entries().next().value as [number, Pending];
              sample({ what: 'no reply for 5 s (window full)', kind: op.kind, mutation: op.mutation, hex: op.bytes.toString('hex'), detail: `id ${oid}` });
            }
          }
          const payload = pkt.bytes.subarray(4);
          let ext: string | undefined;
          if (payload[0] === T.EXTENDED && payload.length >= 9) {
            const len = payload.readUInt32BE(5);
            if (9 + len <= payload.length) ext = payload.subarray(9, 9 + len).toString('latin1');
          }
          ch.outstanding.set(pkt.id, { seq: seq++, sentAt: Date.now(), kind: pkt.kind, mutation: pkt.mutation, expect: pkt.expect, type: payload[0]!, ext, opens: pkt.opens, bytes: pkt.bytes.length > 512 ? Buffer.from(pkt.bytes.subarray(0, 512)) : pkt.bytes });
        }
        ch.queue(pkt.bytes);
        if (ch.queued >= 64 * 1024) await ch.flush();
        // Every 100 packets: let the replies catch up, then hand the new handles to the generator.
        if (i % 100 === 99) {
          const td = Date.now();
          const firstP = ch.outstanding.values().next().value as Pending | undefined;
          await ch.drain(30_000);
          if (process.env.FUZZ_DEBUG && Date.now() - td > 1000) console.log(`DBG drain ${Date.now() - td} ms; oldest ${firstP?.kind}/${firstP?.mutation} ${firstP?.bytes.toString('hex').slice(0, 200)}`);
          adoptHandles();
        }
        if (ch.closed) {
          sample({ what: 'server closed the channel after a non-fatal packet', kind: pkt.kind, mutation: pkt.mutation, hex: pkt.bytes.subarray(0, 512).toString('hex') });
          fig.pingFailures++;
          await resetAfter(undefined);
        }
      }
      await checkpoint();
      fig.batches++;
      opts.onBatch?.({ batches: fig.batches, packets: fig.packets, elapsedMs: Date.now() - started, rssMiB: rss(), channelResets: fig.channelResets, bystanderOps: fig.bystanderOps });
    }

    // ---- final checks: one more checkpoint, and a brand-new connection still works
    await checkpoint();
    const freshConn = await connect(srvRef, { username: 'fuzz', password: fuzzPassword });
    const real = await freshConn.realpath('.');
    if (real !== '/') fig.escapes.push(`REALPATH "." on a new connection is ${JSON.stringify(real)}`);
    await freshConn.end();
    // Every handle the fuzz sessions left open is closed with its session: the fd count returns.
    client.end();
    const until = Date.now() + 10_000;
    do {
      await new Promise((r) => setTimeout(r, 100));
      fig.fdsEnd = fds();
    } while (fig.fdsEnd > fig.fdsStart + 8 && Date.now() < until);

    async function settle(c: FuzzChannel, ms: number, why: string): Promise<void> {
      if (!(await c.drain(ms))) {
        for (const [id, p] of c.outstanding) {
          fig.missingReplies++;
          c.late.add(id);
          sample({ what: `no reply ${why}`, kind: p.kind, mutation: p.mutation, expect: p.expect, hex: p.bytes.toString('hex') });
        }
        c.outstanding.clear();
      }
    }

    async function checkpoint(): Promise<void> {
      const t0 = Date.now();
      // Liveness: a ping through the same channel, answered after everything sent before it.
      const ping = gen.ping();
      const pingPending: Pending = { seq: seq++, sentAt: Date.now(), kind: 'PING', mutation: 'valid', expect: 'reply', type: T.REALPATH, ext: undefined, opens: undefined, bytes: ping.bytes };
      ch.outstanding.set(ping.id, pingPending);
      const got = ch.waitReply(ping.id, 30_000);
      ch.queue(ping.bytes);
      await ch.flush();
      try {
        const r = await got;
        if (r.type !== 104 || r.names?.[0]?.filename !== '/') {
          fig.pingFailures++;
          sample({ what: 'ping answered wrongly', kind: 'PING', mutation: 'valid', detail: describe(r) });
        }
      } catch (e) {
        fig.pingFailures++;
        sample({ what: 'ping not answered', kind: 'PING', mutation: 'valid', detail: (e as Error).message });
      }
      // Everything sent before the ping is owed its reply by now (replies leave in request order).
      for (const [id, p] of ch.outstanding) {
        if (p.seq > pingPending.seq) continue;
        ch.outstanding.delete(id);
        if (id === ping.id) continue;
        fig.missingReplies++;
        ch.late.add(id);
        sample({ what: 'no reply by the next ping', kind: p.kind, mutation: p.mutation, expect: p.expect, hex: p.bytes.toString('hex') });
      }
      if (ch.closed) await resetAfter(undefined);
      adoptHandles();

      // Nothing outside the root changed; no fuzz-named file appeared in host directories.
      const now = snapshot(l);
      for (const d of diffSnapshots(base, now)) fig.escapes.push(`changed outside the root: ${d}`);
      for (const p of fuzzNamesOutside(l, namesBefore)) fig.escapes.push(`created outside the root: ${p}`);
      // Stop on the first escape: the sentinels are no longer a baseline.
      if (fig.escapes.length) stop.done = true;

      fig.fdsPeak = Math.max(fig.fdsPeak, fds());
      const m = rss();
      fig.peakRssMiB = Math.max(fig.peakRssMiB, m);
      if (m > fig.rssLimitMiB) {
        fig.rssExceeded++;
        sample({ what: 'RSS over the bound', kind: 'RSS', mutation: '-', detail: `${m.toFixed(0)} MiB > ${fig.rssLimitMiB.toFixed(0)} MiB` });
      }
      // The test double keeps every audit record in memory: count and drop them.
      for (const e of srvRef.events) bump(fig.auditEvents, e.event);
      srvRef.events.length = 0;
      watchSizes();
      // Thousands of junk names would slow every walk of the root (and READDIR): start afresh.
      if (capSizes(l.root, 2 * MiB) > ROOT_ENTRIES) {
        wipeRoot(l);
        fig.rootWipes++;
      }
      restoreFixtures(l);
      fig.checkpointMs += Date.now() - t0;
    }
  } finally {
    clearInterval(watchdog);
    stop.done = true;
    await withTimeout(bystanderDone, 30_000, 'bystander to stop').catch((e: Error) => fig.bystanderErrors.push(e.message));
    for (const c of clients) c.end();
    await server?.close().catch(() => undefined);
    // Let late callbacks fire while the listeners still count them.
    await new Promise((r) => setTimeout(r, 200));
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    rmSync(l.tmp, { recursive: true, force: true });
    unlimit?.();
  }
  fig.elapsedMs = Date.now() - started;
  fig.packetsPerSecond = Math.round(fig.packets / (fig.elapsedMs / 1000));
  return fig;
}

/** The reply a packet got must fit its request type; STATUS codes must be SFTP v3 codes. */
function checkReply(p: Pending, r: Reply): string | undefined {
  if (r.type === 101) {
    if (r.code === undefined || r.code > 8) return `status code ${r.code}`;
  }
  const known = p.type === T.EXTENDED || (p.type >= 3 && p.type <= 20);
  if (!known) return r.type === 101 && r.code === 8 ? undefined : 'an unknown type must get OP_UNSUPPORTED';
  // The answer when the request parsed; any non-OK status is always acceptable.
  const ext = (p.ext ?? '').replace(/@openssh\.com$/, '');
  const data: Record<number, number> = { 3: 102, 5: 103, 7: 105, 8: 105, 11: 102, 12: 104, 16: 104, 17: 105, 19: 104 };
  const extData: Record<string, number> = { statvfs: 201, fstatvfs: 201, limits: 201, 'users-groups-by-id': 201, 'expand-path': 104, 'home-directory': 104 };
  const want = p.type === T.EXTENDED ? extData[ext] : data[p.type];
  if (r.type === 101) {
    if (r.code === 0 && want !== undefined) return `STATUS OK where ${REPLY_NAMES[want]} was due`;
    return undefined;
  }
  if (want === undefined || r.type !== want) return `${REPLY_NAMES[r.type] ?? r.type} for ${TYPE_NAME(p.type)}${p.ext ? ' ' + p.ext : ''}`;
  if ((p.type === 16 || p.type === 19 || ext === 'expand-path' || ext === 'home-directory') && r.names?.length !== 1) return `NAME with ${r.names?.length} entries`;
  if (p.type === 5 && (r.data?.length ?? 0) > 261120) return `DATA of ${r.data?.length} bytes`;
  return undefined;
}

function TYPE_NAME(t: number): string {
  const n = Object.entries(T).find(([, v]) => v === t);
  return n ? n[0] : `type ${t}`;
}

function describe(r: Reply): string {
  if (r.type === 101) return `STATUS ${statusName(r.code ?? -1)} ${JSON.stringify(r.message)}`;
  if (r.type === 104) return `NAME ${JSON.stringify(r.names?.map((n) => n.filename))}`;
  return `${REPLY_NAMES[r.type] ?? r.type} ${r.raw.subarray(0, 64).toString('hex')}`;
}

// =============================================================================================
// The bystander: another user, valid operations in a loop, every result checked

async function runBystander(first: SftpClient, rng: Rng, fig: FuzzFigures, stop: { done: boolean }, forbidden: Buffer[], reconnect: () => Promise<SftpClient>): Promise<void> {
  let c = first;
  const fail = (what: string, e?: unknown) => {
    if (fig.bystanderErrors.length < 50) fig.bystanderErrors.push(`${what}${e ? `: ${e instanceof Error ? e.message : String(e)}` : ''}`);
  };
  const op = async <V>(what: string, p: Promise<V>): Promise<V> => {
    const v = await p;
    fig.bystanderOps++;
    return v;
  };
  try {
    await op('mkdir', c.mkdir('/work'));
  } catch (e) {
    fail('mkdir /work', e);
  }
  for (let i = 0; !stop.done; i++) {
    const a = `/work/b${i % 3}.bin`;
    const b = `/work/r${i % 3}.bin`;
    const data = rng.bytes(rng.size(128 * 1024));
    try {
      await op('write', c.writeFile(a, data));
      const back = await op('read', c.readFile(a));
      if (!back.equals(data)) fail(`read ${a}: ${back.length} bytes, not the ${data.length} written`);
      const st = await op('stat', c.stat(a));
      if (st.size !== data.length) fail(`stat ${a}: size ${st.size}, want ${data.length}`);
      const list = await op('list', c.list('/work'));
      if (!list.some((e) => e.filename === a.slice(6))) fail(`list /work lacks ${a}`);
      await op('rename', c.rename(a, b));
      const gone = await c.stat(a).then(() => 'still there', (e: unknown) => (e instanceof SftpError && e.code === STATUS.NO_SUCH_FILE ? undefined : String(e)));
      fig.bystanderOps++;
      if (gone) fail(`stat ${a} after rename: ${gone}`);
      const back2 = await op('read', c.readFile(b));
      if (!back2.equals(data)) fail(`read ${b} after rename differs`);
      await op('remove', c.remove(b));
      // The client keeps every byte it received until inbound() is called: drain it (and look
      // for the outside secret and host paths in what this other user was sent).
      const seen = c.inbound();
      for (const bad of forbidden) if (seen.includes(bad)) fig.escapes.push(`bystander received ${bad.toString()}`);
      if (i % 10 === 0) {
        await op('mkdir', c.mkdir(`/work/d${i}`));
        await op('rmdir', c.rmdir(`/work/d${i}`));
        const real = await op('realpath', c.realpath('/work/../..'));
        if (real !== '/') fail(`realpath /work/../.. is ${real}`);
      }
    } catch (e) {
      fail(`op ${i}`, e);
      // Start clean: a new connection, the work files removed.
      try {
        await c.end();
      } catch {
        /* already gone */
      }
      if (stop.done) return;
      try {
        c = await reconnect();
        for (const n of ['b0', 'b1', 'b2', 'r0', 'r1', 'r2']) await c.remove(`/work/${n}.bin`).catch(() => undefined);
      } catch (e2) {
        fail('bystander reconnect', e2);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  await c.end().catch(() => undefined);
}

/** The figures as a table for the console. */
export function formatFigures(f: FuzzFigures): string {
  const rows: [string, string][] = [
    ['seed', String(f.seed)],
    ['packets sent', `${f.packets} (${(f.bytesSent / MiB).toFixed(1)} MiB) in ${f.batches} batches`],
    ['elapsed', `${(f.elapsedMs / 1000).toFixed(1)} s, ${f.packetsPerSecond} packets/s`],
    ['packets by expectation', JSON.stringify(f.byExpect)],
    ['packets by mutation', JSON.stringify(f.byMutation)],
    ['replies', `${f.repliesTotal}: ${JSON.stringify(sorted(f.replies))}`],
    ['channel resets / reconnects / root wipes', `${f.channelResets} / ${f.reconnects} / ${f.rootWipes}`],
    ['missing / unexpected / late replies', `${f.missingReplies} / ${f.unexpectedReplies} / ${f.lateReplies}`],
    ['bad replies', String(f.badReplies)],
    ['reordered (session) / (parser errors)', `${f.reorderedReplies} / ${f.reorderedProtocolErrors}`],
    ['fatal packets left open', String(f.fatalNotClosed)],
    ['ping failures / slow replies', `${f.pingFailures} / ${f.slowReplies}`],
    ['time in resets / checkpoints', `${(f.resetMs / 1000).toFixed(1)} s / ${(f.checkpointMs / 1000).toFixed(1)} s`],
    ['bystander ops / errors', `${f.bystanderOps} / ${f.bystanderErrors.length}`],
    ['RSS start / peak / limit', `${f.startRssMiB.toFixed(0)} / ${f.peakRssMiB.toFixed(0)} / ${f.rssLimitMiB.toFixed(0)} MiB`],
    ['fds start / peak / end', `${f.fdsStart} / ${f.fdsPeak} / ${f.fdsEnd}`],
    ['largest file / runaways', `${(f.largestFile / MiB).toFixed(1)} MiB / ${f.runaways.length}${f.fileSizeLimited ? '' : ' (no RLIMIT_FSIZE: copy-data to EOF not sent)'}`],
    ['escapes', String(f.escapes.length)],
    ['crashes', String(f.crashes.length)],
    ['audit events', JSON.stringify(sorted(f.auditEvents))],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`);
  for (const s of f.slowest) lines.push(`  slow: ${s.ms} ms for ${s.kind}/${s.mutation} -> ${s.reply} bytes=${s.hex.slice(0, 300)}`);
  for (const s of f.samples) lines.push(`  sample: ${s.what} [${s.kind}/${s.mutation}${s.expect ? '/' + s.expect : ''}] ${s.detail ?? ''} ${s.hex ? 'bytes=' + s.hex.slice(0, 300) : ''}`);
  for (const e of [...f.escapes.slice(0, 10), ...f.crashes.slice(0, 5), ...f.bystanderErrors.slice(0, 10), ...f.runaways.slice(0, 10)]) lines.push(`  ! ${e}`);
  return `protocol fuzz figures\n${lines.join('\n')}`;
}

function sorted(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort((a, b) => b[1] - a[1]));
}
