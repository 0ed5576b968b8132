/**
 * `workers: N`: one daemon, N processes (node:cluster) sharing the listening socket. The primary
 * owns the host-key generation, signals, the ready line and the admin listener (metrics aggregated
 * from every worker); workers relay login failures and session counts through it, so penalties and
 * maxSessions hold for the whole daemon. Audit files are appended by every worker (O_APPEND, whole
 * lines), each record stamped with its `worker` id. Each worker runs the hooks for its own sessions'
 * records, in spool folders of its slot (1..N): a worker replacing a crashed one takes its slot, and
 * so its backlog (src/hooks/layout.ts).
 */
import cluster, { type Worker } from 'node:cluster';
import { startTag } from './sftp/staged-upload.js';
import { AggregatorRegistry } from 'prom-client';
import type { ServerConfig } from './config/load.js';
import type { PeerMessage, Peers } from './ssh/admission.js';
import { loadHostKeys, type HostKey } from './ssh/host-keys.js';
import { startAdmin } from './admin/http.js';
import { gatherBacklogs } from './hooks/layout.js';

interface Envelope {
  sftpChroot: PeerMessage;
}
interface Ready {
  sftpChrootReady: { port: number };
}
const isEnvelope = (m: unknown): m is Envelope => typeof m === 'object' && m !== null && 'sftpChroot' in m;
const isReady = (m: unknown): m is Ready => typeof m === 'object' && m !== null && 'sftpChrootReady' in m;

/** Worker side: peers through the primary. */
export function workerPeers(): Peers {
  return {
    send: (msg) => process.send?.({ sftpChroot: msg } satisfies Envelope),
    onMessage: (handler) => process.on('message', (m) => isEnvelope(m) && handler(m.sftpChroot)),
  };
}

export function announceReady(port: number): void {
  process.send?.({ sftpChrootReady: { port } } satisfies Ready);
}

export interface PrimaryHandle {
  port: number;
  hostKeys: Omit<HostKey, 'pem'>[];
  adminPort: number | undefined;
  /** Forwards a signal to every worker. */
  signal(sig: NodeJS.Signals): void;
  /** Resolves when every worker has exited (after SIGTERM). */
  stopped(): Promise<void>;
}

/** The primary's workers: it relays their peer messages and replaces one that crashes, until told to stop. */
class WorkerPool {
  readonly workers = new Set<Worker>();
  stopping = false;

  /** Resolves with the port once the new worker listens; `slot` (1..N) outlives the worker. */
  fork(slot: number): Promise<number> {
    const w = cluster.fork({ SFTP_CHROOT_WORKER: '1', SFTP_CHROOT_WORKER_SLOT: String(slot) });
    this.workers.add(w);
    w.on('message', (m: unknown) => {
      if (!isEnvelope(m)) return;
      for (const other of this.workers) if (other !== w && other.isConnected()) other.send(m);
    });
    w.on('exit', (code, signal) => {
      this.workers.delete(w);
      // A crashed worker is replaced; its sessions are gone, the others go on.
      if (!this.stopping) {
        process.stderr.write(`sftp-chroot: worker ${w.id} exited (${signal ?? code}); starting another\n`);
        void this.fork(slot).catch(() => undefined);
      }
    });
    return new Promise((resolve, reject) => {
      w.on('message', (m: unknown) => isReady(m) && resolve(m.sftpChrootReady.port));
      w.once('exit', (code) => reject(new Error(`worker exited with ${code} before listening`)));
    });
  }
}

/** The admin listener, serving metrics aggregated from every worker; its port. */
async function primaryAdmin(config: ServerConfig, pool: WorkerPool): Promise<number | undefined> {
  if (!config.admin) return undefined;
  const aggregator = new AggregatorRegistry();
  const admin = await startAdmin({
    ...config.admin.listen,
    metrics: { text: () => aggregator.clusterMetrics(), contentType: aggregator.contentType },
    healthy: () => !pool.stopping && pool.workers.size > 0,
  });
  process.once('exit', () => void admin.close());
  return admin.port;
}

export async function startPrimary(config: ServerConfig): Promise<PrimaryHandle> {
  // Generate the host key once, here: N workers racing to create it would disagree.
  const hostKeys = (await loadHostKeys(config.hostKeys, config.keysDir)).map((k) => ({ type: k.type, fingerprint: k.fingerprint, generated: k.generated, ...(k.path ? { path: k.path } : {}) }));
  // Backlogs where no worker would look (fewer workers than last time, or one process) move to worker 1's.
  await gatherBacklogs(config.spoolDir, config.hooks.map((h) => h.name), config.workers);
  // One start tag for every worker (inherited through the environment): their staging files are this run's.
  startTag();
  const pool = new WorkerPool();
  const ports = await Promise.all(Array.from({ length: config.workers }, (_, i) => pool.fork(i + 1)));
  const adminPort = await primaryAdmin(config, pool);
  return {
    port: ports[0] ?? 0,
    hostKeys,
    adminPort,
    signal(sig) {
      if (sig === 'SIGTERM' || sig === 'SIGINT') pool.stopping = true;
      for (const w of pool.workers) w.process.kill(sig);
    },
    stopped: () =>
      new Promise((resolve) => {
        const check = () => (pool.workers.size === 0 ? resolve() : setTimeout(check, 50));
        check();
      }),
  };
}

export const isWorker = (): boolean => cluster.isWorker && process.env.SFTP_CHROOT_WORKER === '1';
export const workerId = (): number => cluster.worker?.id ?? 0;
/** This worker's slot, 1..N: kept by the worker that replaces it (unlike its id). */
export const workerSlot = (): number => Number(process.env.SFTP_CHROOT_WORKER_SLOT) || 1;
