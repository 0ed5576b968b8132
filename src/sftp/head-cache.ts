/**
 * Small files are read whole at OPEN (OpenFile.head), so their first READs need no trip to the
 * disk. That content may answer a READ only briefly, and only while this session has changed
 * nothing since: within HEAD_FRESH_MS a READ sees what a read at OPEN saw; after it, the disk.
 */
import type { OpenFile } from '../fs/file-system.js';
import type { FileHandle, HeadStamp } from './handles.js';

const HEAD_FRESH_MS = 100;

export class HeadCache {
  /** Requests that changed files (or may have: an OPEN for writing) so far in this session. */
  #changes = 0;

  /** A request that changes files arrived: content read before it answers no READ. */
  changed(): void {
    this.#changes++;
  }

  /** At OPEN: when `file` came with its content, the stamp that lets it answer READs. */
  stamp(file: OpenFile): HeadStamp | undefined {
    return file.head !== undefined ? { at: Date.now(), changes: this.#changes } : undefined;
  }

  /** Reads into `into` from the content read at OPEN while it may answer, else from the file. */
  read(h: FileHandle, offset: number, into: Buffer): Promise<number> {
    const head = this.#fresh(h);
    if (head === undefined) return h.file.read(offset, into);
    const n = offset >= head.length ? 0 : head.copy(into, 0, offset, Math.min(head.length, offset + into.length));
    // End of file is answered from the head once; a client polling a growing file reads the disk.
    if (n === 0) h.head = undefined;
    return Promise.resolve(n);
  }

  #fresh(h: FileHandle): Buffer | undefined {
    const stamp = h.head;
    if (stamp === undefined) return undefined;
    // Read at each use: a test double hides it while faults are injected.
    const data = h.file.head;
    if (data !== undefined && stamp.changes === this.#changes && Date.now() - stamp.at <= HEAD_FRESH_MS) return data;
    h.head = undefined;
    return undefined;
  }
}
