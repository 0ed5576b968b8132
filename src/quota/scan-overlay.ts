/**
 * Usage while the start-up walk runs, exact once it ends. The walk counts each inode it meets; an
 * inode changed through the server meanwhile is "touched": from then on its state is the one the
 * change left (known exactly: sizes are tracked), and the walk's view of it, earlier or later, is
 * ignored. So a file written, removed or created during the walk counts once, as it is now,
 * whether the walk passed it before or after. Until the walk ends the sum is a lower bound.
 */
import type { InodeState, Usage } from './usage.js';

export class ScanOverlay {
  /** Inodes the walk counted, with what it counted; also how hard links are met once. */
  readonly #walked = new Map<string, Usage>();
  readonly #touched = new Map<string, InodeState>();
  #bytes = 0;
  #files = 0;

  get usage(): Usage {
    return { bytes: this.#bytes, files: this.#files };
  }

  /** The walk met an inode (key undefined: no inode number, counted as met). */
  walked(key: string | undefined, state: Usage): void {
    if (key !== undefined) {
      if (this.#touched.has(key) || this.#walked.has(key)) return;
      this.#walked.set(key, state);
    }
    this.#add(state, 1);
  }

  /** A change through the server left the inode in `after` (it was in `before`). */
  changed(key: string | undefined, before: InodeState, after: InodeState): void {
    if (key === undefined) {
      this.#add(before, -1);
      this.#add(after, 1);
      return;
    }
    // What the sum holds for this inode now: its touched state, or what the walk counted.
    if (this.#touched.has(key)) this.#add(this.#touched.get(key) ?? null, -1);
    else if (this.#walked.has(key)) this.#add(this.#walked.get(key)!, -1);
    this.#touched.set(key, after);
    this.#add(after, 1);
  }

  #add(s: InodeState, sign: 1 | -1): void {
    if (s === null) return;
    this.#bytes += sign * s.bytes;
    this.#files += sign * s.files;
  }
}
