/**
 * The seam between the protocol (sftp/) and the files (jail/), below both: sftp/ calls these
 * methods with absolute virtual paths and never touches `fs`; implementations (jail/) never see an
 * ssh2 type.
 * A test double wraps an implementation here to inject faults, so injected errors take the
 * same path to the client as real ones.
 */

export interface FileStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: number;
  mtime: number;
  nlink: number;
  /** Device and inode, when known: tell whether two handles are the same file. */
  dev?: number;
  ino?: number;
}

/** Attributes a client asked to set; only present fields change. */
export interface SetAttrs {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: number;
  mtime?: number;
}

export interface VfsStat {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

export interface OpenFlags {
  read: boolean;
  write: boolean;
  append: boolean;
  creat: boolean;
  trunc: boolean;
  excl: boolean;
}

/** Whether opening with these flags may change the file (write, append, create or truncate). */
export function writesFile(f: OpenFlags): boolean {
  return f.write || f.append || f.creat || f.trunc;
}

const S_IFMT = 0o170000;
export const isDirectory = (s: Pick<FileStat, 'mode'>): boolean => (s.mode & S_IFMT) === 0o040000;
export const isRegular = (s: Pick<FileStat, 'mode'>): boolean => (s.mode & S_IFMT) === 0o100000;

export interface DirEntry {
  name: string;
  /** null when the entry vanished between listing and stat. */
  stat: FileStat | null;
}

export interface OpenFile {
  /** Stat taken when the file was opened. */
  readonly stat: FileStat;
  /**
   * The whole file, read when it was opened (read-only opens of small files), so that the first
   * READs need no trip to the disk. Kept briefly: it may turn undefined at any time.
   * Implementations without it leave it undefined.
   */
  readonly head?: Buffer | undefined;
  /**
   * Reads up to `into.length` bytes into `into` and returns how many; 0 means end of file. The
   * caller owns `into` (the session reuses its READ buffers instead of allocating one per request).
   */
  read(position: number, into: Buffer): Promise<number>;
  write(position: number, data: Buffer): Promise<void>;
  fstat(): Promise<FileStat>;
  fsetstat(attrs: SetAttrs): Promise<void>;
  fsync(): Promise<void>;
  fstatvfs(): Promise<VfsStat>;
  /** copy-data: copies `length` bytes (0 = to end of file) into `target`. Returns bytes copied. */
  copyTo(target: OpenFile, readOffset: number, length: number, writeOffset: number): Promise<number>;
  /** Closes once in-flight operations finish; later calls fail. */
  close(): Promise<void>;
}

export interface DirReader {
  /** Up to `max` entries; an empty array at the end. */
  next(max: number): Promise<DirEntry[]>;
  close(): Promise<void>;
}

export interface FileSystem {
  /**
   * Opens `path`; with `stagingPath` (a hidden name in the same directory: an atomic upload) the
   * file is created there instead, while `path` stays the name the request is about (faults, logs).
   */
  open(path: string, flags: OpenFlags, mode: number, stagingPath?: string): Promise<OpenFile>;
  opendir(path: string): Promise<DirReader>;
  stat(path: string): Promise<FileStat>;
  lstat(path: string): Promise<FileStat>;
  setstat(path: string, attrs: SetAttrs): Promise<void>;
  lsetstat(path: string, attrs: SetAttrs): Promise<void>;
  mkdir(path: string, mode: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** overwrite=false: fail if `to` exists (SFTP RENAME); true: replace it (posix-rename). */
  rename(from: string, to: string, overwrite: boolean): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
  /** Creates `linkPath` holding `target` verbatim. */
  symlink(target: string, linkPath: string): Promise<void>;
  readlink(path: string): Promise<string>;
  /** Canonical virtual path; the last component may be missing. */
  realpath(path: string): Promise<string>;
  statvfs(path: string): Promise<VfsStat>;
}
