/**
 * statvfs as a user with a quota sees it: the quota is the filesystem's size and what is left of it
 * the free space, so `df -h` in OpenSSH's sftp shows the quota. The real free space stays an upper
 * bound: a quota larger than the disk does not promise space the disk lacks.
 */
import type { VfsStat } from '../fs/file-system.js';
import type { QuotaLimits, Usage } from './usage.js';

export function quotaVfs(v: VfsStat, used: Usage, limits: QuotaLimits | undefined): VfsStat {
  if (!limits) return v;
  const out = { ...v };
  if (limits.bytes !== undefined) {
    // f_blocks, f_bfree and f_bavail are in f_frsize units (statvfs(3)).
    const unit = v.frsize > 0 ? v.frsize : v.bsize > 0 ? v.bsize : 1;
    const left = Math.max(0, Math.floor((limits.bytes - used.bytes) / unit));
    out.blocks = Math.ceil(limits.bytes / unit);
    out.bfree = Math.min(left, v.bfree);
    out.bavail = Math.min(left, v.bavail);
  }
  if (limits.files !== undefined) {
    const left = Math.max(0, limits.files - used.files);
    out.files = limits.files;
    out.ffree = Math.min(left, v.ffree);
    out.favail = Math.min(left, v.favail);
  }
  return out;
}
