/** Accounting for one open file handle: what became the `transfer` audit record when it closes. */
import { createHash, type Hash } from 'node:crypto';
import type { OpenFlags } from '../fs/file-system.js';
import type { Transfer, TransferStatus } from '../audit/events.js';
import { TRANSFER_ERRORS, type TransferError } from '../audit/codes.js';

export function flagsString(f: OpenFlags): string {
  const parts: string[] = [];
  if (f.read) parts.push('READ');
  if (f.write) parts.push('WRITE');
  if (f.append) parts.push('APPEND');
  if (f.creat) parts.push('CREAT');
  if (f.trunc) parts.push('TRUNC');
  if (f.excl) parts.push('EXCL');
  return parts.join('|');
}

export class TransferStats {
  readonly started = Date.now();
  bytesRead = 0;
  bytesWritten = 0;
  firstOffset: number | null = null;
  highestOffset = 0;
  /** READ/WRITE requests served, and the largest one (shows whether clients use 255 KiB requests). */
  requests = 0;
  maxRequestBytes = 0;
  errorStatus: string | undefined;
  errorMessage: string | undefined;
  /** A coded cause of the failure (statusOf's `cause`, when it is one of TRANSFER_ERRORS). */
  errorCode: TransferError | undefined;
  #hash: Hash | null;
  #hashSkipped: string | undefined;
  #nextOffset = 0;

  constructor(
    readonly path: string,
    readonly flags: OpenFlags,
    readonly startSize: number,
    hashUploads: boolean,
    /** Written under a hidden name and renamed into place on close (atomic upload). */
    readonly atomic = false,
  ) {
    this.#hash = hashUploads && flags.write ? createHash('sha256') : null;
    if (!hashUploads) this.#hashSkipped = undefined;
    else if (!flags.write) this.#hashSkipped = undefined;
    else if (flags.append) this.#skip('opened for append');
  }

  #skip(why: string): void {
    this.#hash = null;
    this.#hashSkipped ??= why;
  }

  #offset(offset: number, len: number): void {
    this.requests++;
    if (len > this.maxRequestBytes) this.maxRequestBytes = len;
    if (this.firstOffset === null) this.firstOffset = offset;
    if (offset + len > this.highestOffset) this.highestOffset = offset + len;
  }

  /** Called when a WRITE arrives, in arrival order (hashing needs the client's order, not completion order). */
  writing(offset: number, data: Buffer): void {
    if (this.#hash) {
      if (offset === this.#nextOffset) {
        this.#hash.update(data);
        this.#nextOffset += data.length;
      } else this.#skip(this.#nextOffset === 0 && this.bytesWritten === 0 ? 'first write not at offset 0' : 'non-sequential write');
    }
  }
  wrote(offset: number, len: number): void {
    this.bytesWritten += len;
    this.#offset(offset, len);
  }
  read(offset: number, len: number): void {
    this.bytesRead += len;
    this.#offset(offset, len);
  }
  failed(status: string, message: string, cause?: string): void {
    if (this.errorStatus === undefined) this.errorCode = TRANSFER_ERRORS.find((c) => c === cause);
    this.errorStatus ??= status;
    this.errorMessage ??= message;
    if (this.#hash) this.#skip('a write failed');
  }

  record(status: TransferStatus): Omit<Transfer, 'remote' | 'user' | 'sessionId'> {
    const direction = this.bytesWritten > 0 && this.bytesRead > 0 ? 'both' : this.bytesWritten > 0 ? 'upload' : this.bytesRead > 0 ? 'download' : this.flags.write ? 'upload' : this.flags.read ? 'download' : 'none';
    const final: TransferStatus = this.errorStatus ? 'error' : status;
    const rec: Omit<Transfer, 'remote' | 'user' | 'sessionId'> = {
      event: 'transfer',
      path: this.path,
      flags: flagsString(this.flags),
      direction,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      firstOffset: this.firstOffset,
      highestOffset: this.highestOffset,
      startSize: this.startSize,
      requests: this.requests,
      maxRequestBytes: this.maxRequestBytes,
      durationMs: Date.now() - this.started,
      status: final,
      ...(this.atomic ? { atomic: true } : {}),
      ...(this.errorStatus ? { sftpStatus: this.errorStatus, message: this.errorMessage ?? '' } : {}),
      ...(this.errorCode ? { error: this.errorCode } : {}),
    };
    if (this.flags.write && this.#hash && final === 'complete') rec.sha256 = this.#hash.digest('hex');
    else if (this.flags.write && (this.#hash || this.#hashSkipped)) rec.sha256Skipped = this.#hashSkipped ?? `transfer ${final}`;
    return rec;
  }
}
