/**
 * Quotas per root (src/quota/): one Ledger per root that some user with a quota has, shared by
 * every session of every user of that root (a user without a quota on a shared root is counted,
 * not limited). A new root's usage comes from a walk in the background, so logins are not delayed;
 * limits are read from the current config at each check, so a reload changes them for running
 * sessions too. Users without a quota on a root without one get their FileSystem untouched.
 */
import type { AuditEmitter } from '../audit/events.js';
import type { QuotaGauges } from '../admin/metrics.js';
import type { ServerConfig, UserRecord } from '../config/load.js';
import type { QuotaSetting } from '../config/quota.js';
import type { FileSystem } from '../fs/file-system.js';
import { Jail } from '../jail/jail.js';
import { Ledger } from '../quota/ledger.js';
import { QuotaFileSystem } from '../quota/quota-fs.js';
import { walk } from '../fs/walk.js';
import { isRegular } from '../fs/file-system.js';
import { SharedCounter, type UsageStore } from '../shared/shared-counter.js';

/** A FileSystem the walk reads a root through, closed when it ends. */
export type ScanFileSystem = FileSystem & { close(): Promise<void> };

export interface QuotaRegistryOptions {
  audit: AuditEmitter;
  /** Opens a root for its walk (default: a Jail on it). */
  open?: (root: string) => ScanFileSystem;
  /** Regular files the walk leaves out by name: staging files the start-up sweep removes. */
  skip?: ((name: string) => boolean) | undefined;
  /** Usage kept in the shared store (config "shared"): one count per root for every instance. */
  shared?: (UsageStore & { claimScan(root: string, ttlMs: number): Promise<boolean>; scanCounted(root: string): Promise<void> }) | undefined;
}

/** A walk claimed in the shared store that never reports (its instance died) is claimable again after this. */
const SCAN_CLAIM_MS = 60 * 60 * 1000;

export class QuotaRegistry {
  readonly #ledgers = new Map<string, Ledger>();
  readonly #scans = new Set<Promise<void>>();
  readonly #opts: QuotaRegistryOptions;
  #users: readonly UserRecord[] = [];
  #limits = new Map<string, QuotaSetting>();
  #closed = false;

  constructor(config: ServerConfig, opts: QuotaRegistryOptions) {
    this.#opts = opts;
    this.reload(config);
  }

  /** New limits for everyone; roots that gained a quota are walked; sessions keep their root's ledger. */
  reload(config: ServerConfig): void {
    this.#users = config.users;
    this.#limits = new Map(config.users.flatMap((u) => (u.quota ? [[u.username, u.quota] as const] : [])));
    const roots = new Set(config.users.filter((u) => u.quota).map((u) => u.root));
    for (const root of this.#ledgers.keys()) if (!roots.has(root)) this.#ledgers.delete(root);
    for (const root of roots) if (!this.#ledgers.has(root)) this.#start(root);
  }

  /** The user's FileSystem with their root's quota counted and their limits enforced, or `fs` itself. */
  wrap(fs: FileSystem, user: UserRecord): FileSystem {
    const ledger = this.#ledgers.get(user.root);
    if (!ledger) return fs;
    const name = user.username;
    return new QuotaFileSystem(fs, ledger, () => this.#limits.get(name));
  }

  /** Users with a quota, their root's usage and their limits. */
  gauges(): QuotaGauges[] {
    return this.#users.flatMap((u) => {
      const limits = this.#limits.get(u.username);
      const ledger = this.#ledgers.get(u.root);
      if (!limits || !ledger) return [];
      return [{ user: u.username, ...ledger.usage(), limitBytes: limits.bytes, limitFiles: limits.files }];
    });
  }

  /** Resolves when the walks under way have ended. */
  async scansDone(): Promise<void> {
    await Promise.all([...this.#scans]);
  }

  /** Ends the walks under way early, unlogged (the server is stopping). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.scansDone();
  }

  #start(root: string): void {
    if (this.#opts.shared) return this.#startShared(root, this.#opts.shared);
    const ledger = new Ledger();
    this.#ledgers.set(root, ledger);
    this.#walk(root, ledger);
  }

  #walk(root: string, ledger: Ledger, after?: () => Promise<void>): void {
    ledger.beginScan();
    const scan = this.#scan(root, ledger)
      .then(() => after?.())
      .catch(() => undefined)
      .finally(() => this.#scans.delete(scan));
    this.#scans.add(scan);
  }

  /**
   * With a shared store: a root some instance counted already is adopted as it stands; one nobody
   * counted is walked by the one instance that claims it, and the others adopt the count as it
   * grows. An unreachable store at this moment leaves this process counting alone (a local walk).
   */
  #startShared(root: string, store: NonNullable<QuotaRegistryOptions['shared']>): void {
    const counter = new SharedCounter(store, root);
    const ledger = new Ledger(counter);
    this.#ledgers.set(root, ledger);
    const decided = (async () => {
      const known = await store.usage(root);
      if (known) await counter.sync();
      if (known?.counted) return this.#adopted(root, known, 'counted before');
      if (await store.claimScan(root, SCAN_CLAIM_MS)) return this.#walk(root, ledger, () => store.scanCounted(root));
      this.#adopted(root, known ?? { bytes: 0, files: 0 }, 'being walked by another instance');
    })().catch(() => {
      const local = new Ledger();
      this.#ledgers.set(root, local);
      this.#walk(root, local);
    });
    this.#scans.add(decided);
    void decided.finally(() => this.#scans.delete(decided));
  }

  #adopted(root: string, u: { bytes: number; files: number }, why: string): void {
    const users = this.#users.filter((x) => x.root === root).map((x) => x.username);
    this.#opts.audit.emit({ event: 'quota.scan', message: `quota usage of ${users.join(', ')} from the shared store (${why}): ${u.bytes} bytes, ${u.files} files`, users, bytes: u.bytes, files: u.files, durationMs: 0 });
  }

  async #scan(root: string, ledger: Ledger): Promise<void> {
    const started = Date.now();
    let error: string | undefined;
    try {
      const fs = (this.#opts.open ?? ((r: string) => new Jail(r)))(root);
      try {
        const skip = this.#opts.skip;
        await walk(fs, ({ name, stat }) => (skip?.(name) && isRegular(stat) ? undefined : ledger.walked(stat)), { stop: () => this.#closed });
      } finally {
        await fs.close().catch(() => undefined);
      }
    } catch (e) {
      error = (e as { code?: unknown }).code !== undefined ? String((e as { code?: unknown }).code) : e instanceof Error ? e.message : String(e);
    }
    const { bytes, files } = ledger.endScan();
    if (this.#closed) return;
    const users = this.#users.filter((u) => u.root === root).map((u) => u.username);
    const durationMs = Date.now() - started;
    const message = error === undefined ? `quota usage of ${users.join(', ')}: ${bytes} bytes, ${files} files` : `quota walk of ${users.join(', ')} failed (${error}): usage counts only changes since the start`;
    this.#opts.audit.emit({ event: 'quota.scan', message, users, bytes, files, durationMs, ...(error !== undefined ? { error } : {}) });
  }
}
