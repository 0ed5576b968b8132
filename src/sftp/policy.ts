/**
 * Per-user request policy, decided in one place: read-only, allow/deny lists by request name
 * (as OpenSSH's sftp-server -P/-p). A refusal is PERMISSION_DENIED and is logged by the caller.
 */
import type { RequestName } from '../config/schema.js';
import { SftpStatusError } from '../errors.js';

/** Requests that change the filesystem; refused for read-only users. */
const WRITES: ReadonlySet<RequestName> = new Set<RequestName>([
  'write', 'setstat', 'fsetstat', 'remove', 'mkdir', 'rmdir', 'rename', 'symlink',
  'posix-rename', 'hardlink', 'lsetstat', 'copy-data',
]);

/** Whether a request changes the filesystem (an OPEN says so through `opts.writes`). */
export function changesFiles(request: RequestName, opts: { writes?: boolean } = {}): boolean {
  return WRITES.has(request) || opts.writes === true;
}

export interface PolicyRules {
  readonly readOnly: boolean;
  readonly denyRequests: ReadonlySet<RequestName>;
  readonly allowRequests?: ReadonlySet<RequestName>;
}

export class Policy {
  constructor(readonly rules: PolicyRules) {}

  /** Throws PERMISSION_DENIED (with the reason for the log) if `request` is not allowed. */
  check(request: RequestName, opts: { writes?: boolean } = {}): void {
    const r = this.rules;
    if (r.allowRequests && !r.allowRequests.has(request)) throw new SftpStatusError('PERMISSION_DENIED', undefined, `"${request}" is not in allowRequests`);
    if (r.denyRequests.has(request)) throw new SftpStatusError('PERMISSION_DENIED', undefined, `"${request}" is in denyRequests`);
    if (r.readOnly && changesFiles(request, opts)) throw new SftpStatusError('PERMISSION_DENIED', undefined, 'read-only user');
  }
}
