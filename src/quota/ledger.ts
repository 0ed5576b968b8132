/**
 * One root's accounting, shared by every session of every user with that root: the usage counter,
 * the start-up walk's overlay while it runs, the sizes of inodes open for writing, and a lock that
 * makes "look, then change a name" one step among this root's requests (two removes of hard links
 * to one file must not both see the other name still there). Limits are the caller's: users
 * sharing a root may have different ones.
 */
import type { FileStat } from '../fs/file-system.js';
import { QuotaExceeded } from '../errors.js';
import { ScanOverlay } from './scan-overlay.js';
import { LocalCounter, keyOf, stateOf, type InodeState, type QuotaLimits, type Usage, type UsageCounter } from './usage.js';

/** An inode open for writing: its size as counted (written ends included as soon as they are asked). */
export interface OpenInode {
  size: number;
  /** Handles open on it. */
  refs: number;
  /** false once its last name is gone: its bytes no longer count, whatever is written. */
  linked: boolean;
  /** Extending writes under way, and how many ever started (a later fstat must see them all). */
  growing: number;
  grows: number;
  /** An extension failed or was cut short: the size is re-read (fstat) once nothing extends it. */
  stale: boolean;
}

export class Ledger {
  readonly inodes = new Map<string, OpenInode>();
  readonly #counter: UsageCounter;
  #overlay: ScanOverlay | undefined;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(counter: UsageCounter = new LocalCounter()) {
    this.#counter = counter;
  }

  /** Exact once the walk ended; a lower bound while it runs. */
  usage(): Usage {
    return this.#overlay ? this.#overlay.usage : this.#counter.get();
  }

  beginScan(): void {
    this.#overlay ??= new ScanOverlay();
  }

  /** The walk met `stat`. */
  walked(stat: FileStat): void {
    this.#overlay?.walked(keyOf(stat), stateOf(stat));
  }

  /** The walk is over: what it found, with the changes made meanwhile, becomes the count. */
  endScan(): Usage {
    const o = this.#overlay;
    if (o) {
      this.#overlay = undefined;
      this.#counter.add(o.usage.bytes, o.usage.files);
    }
    return this.usage();
  }

  /** An inode went from `before` to `after` through this server. */
  change(key: string | undefined, before: InodeState, after: InodeState): void {
    if (this.#overlay) return this.#overlay.changed(key, before, after);
    const bytes = (after?.bytes ?? 0) - (before?.bytes ?? 0);
    const files = (after?.files ?? 0) - (before?.files ?? 0);
    if (bytes !== 0 || files !== 0) this.#counter.add(bytes, files);
  }

  /** Fails with QuotaExceeded if adding `bytes` and `files` would pass `limits`; shrinking always passes. */
  check(limits: QuotaLimits | undefined, bytes: number, files: number): void {
    if (!limits) return;
    const used = this.usage();
    if (bytes > 0 && limits.bytes !== undefined && used.bytes + bytes > limits.bytes) {
      throw new QuotaExceeded('bytes', `quota of ${limits.bytes} bytes: ${used.bytes} used, ${bytes} more asked`);
    }
    if (files > 0 && limits.files !== undefined && used.files + files > limits.files) {
      throw new QuotaExceeded('files', `quota of ${limits.files} files: ${used.files} used`);
    }
  }

  /**
   * With a counter shared by several instances and a byte limit near (within a tenth of it, or
   * 8 MiB), the other instances' latest changes are fetched before `bytes` more are checked, so
   * two instances cannot both fill the last of a quota from stale counts. undefined: check now.
   */
  freshen(limits: QuotaLimits | undefined, bytes: number): Promise<void> | undefined {
    if (limits?.bytes === undefined || !this.#counter.sync || this.#overlay) return undefined;
    const margin = Math.max(8 * 1024 * 1024, limits.bytes / 10);
    if (this.usage().bytes + bytes <= limits.bytes - margin) return undefined;
    return this.#counter.sync();
  }

  /** check() then change(), in one step (no await between: concurrent requests see each other). */
  reserve(limits: QuotaLimits | undefined, key: string | undefined, before: InodeState, after: InodeState): void {
    this.check(limits, (after?.bytes ?? 0) - (before?.bytes ?? 0), (after?.files ?? 0) - (before?.files ?? 0));
    this.change(key, before, after);
  }

  /** Runs `fn` after this root's earlier exclusive steps, before its later ones. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
