/**
 * What a quota counts, and where a root's count is kept. Bytes are the st_size of regular files,
 * each inode once (hard links add nothing); files are inodes below the root of any type (regular
 * files, directories, symlinks, others), each once while it has a name. The counter sits behind
 * UsageCounter (add/get) so a store shared by several instances can replace the in-process one.
 */
import { isRegular, type FileStat } from '../fs/file-system.js';

export interface Usage {
  readonly bytes: number;
  readonly files: number;
}

/** A user's limits; an absent field is not limited. */
export interface QuotaLimits {
  readonly bytes?: number | undefined;
  readonly files?: number | undefined;
}

/** One root's usage. add() takes signed changes; get() may be read at any time. */
export interface UsageCounter {
  get(): Usage;
  add(bytes: number, files: number): void;
  /** A counter shared with other instances: fetches their latest changes (never rejects). */
  sync?(): Promise<void>;
}

/** This process's count: exact for changes made through this process only (README, Quotas). */
export class LocalCounter implements UsageCounter {
  #bytes = 0;
  #files = 0;
  get(): Usage {
    return { bytes: this.#bytes, files: this.#files };
  }
  add(bytes: number, files: number): void {
    this.#bytes += bytes;
    this.#files += files;
  }
}

/** What one inode adds to a usage; null: it has no name any more (or never had). */
export type InodeState = Usage | null;

export function stateOf(s: FileStat): Usage {
  return { bytes: isRegular(s) ? s.size : 0, files: 1 };
}

/** A regular file of `size` bytes. */
export const regular = (size: number): Usage => ({ bytes: size, files: 1 });
export const NOT_A_FILE: Usage = { bytes: 0, files: 1 };

/** Identifies an inode (hard links share it); undefined when the stat has no device and inode. */
export function keyOf(s: FileStat): string | undefined {
  return s.dev !== undefined && s.ino !== undefined ? `${s.dev}:${s.ino}` : undefined;
}

export function sameInode(a: FileStat, b: FileStat): boolean {
  const k = keyOf(a);
  return k !== undefined && k === keyOf(b);
}
