/**
 * Per-user request policy, decided in one place: read-only, allow/deny lists by request name
 * (as OpenSSH's sftp-server -P/-p). A refusal is PERMISSION_DENIED and is logged by the caller.
 */
import { WRITES, type RequestName } from './requests.js';
import { SftpStatusError } from '../errors.js';

/** Whether a request changes the filesystem: the table says (requests.ts), an OPEN through `opts.writes`. */
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
