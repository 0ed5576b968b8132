/**
 * The one place where errors become SFTP statuses. Codes follow OpenSSH sftp-server's
 * errno_to_portable() and messages its status_to_message(), so clients print what people know.
 * Raw error text never goes to the client (it could contain host paths); it goes to the log.
 */
import { QuotaExceeded, STATUS, SftpStatusError, isErrnoLike, type StatusName } from '../errors.js';

export const STATUS_MESSAGES: Record<StatusName, string> = {
  OK: 'Success',
  EOF: 'End of file',
  NO_SUCH_FILE: 'No such file',
  PERMISSION_DENIED: 'Permission denied',
  FAILURE: 'Failure',
  BAD_MESSAGE: 'Bad message',
  NO_CONNECTION: 'No connection',
  CONNECTION_LOST: 'Connection lost',
  OP_UNSUPPORTED: 'Operation unsupported',
};

/** What a client is told when a quota stops a request, and the `cause` the log records. */
export const QUOTA_MESSAGE = 'Quota exceeded';
export const QUOTA_CAUSE = 'quota';

const ERRNO_STATUS: Record<string, StatusName> = {
  ENOENT: 'NO_SUCH_FILE',
  ENOTDIR: 'NO_SUCH_FILE',
  EBADF: 'NO_SUCH_FILE',
  ELOOP: 'NO_SUCH_FILE',
  EPERM: 'PERMISSION_DENIED',
  EACCES: 'PERMISSION_DENIED',
  EFAULT: 'PERMISSION_DENIED',
  EROFS: 'PERMISSION_DENIED',
  ENAMETOOLONG: 'BAD_MESSAGE',
  EINVAL: 'BAD_MESSAGE',
  ENOSYS: 'OP_UNSUPPORTED',
  EOPNOTSUPP: 'OP_UNSUPPORTED',
  ENOTSUP: 'OP_UNSUPPORTED',
  // A FIFO, socket or device: refused, never opened.
  ENOTREG: 'PERMISSION_DENIED',
};

export interface MappedStatus {
  code: number;
  name: StatusName;
  message: string;
  /** errno name or error code, for the log. */
  cause: string;
}

export function statusOf(err: unknown): MappedStatus {
  if (err instanceof SftpStatusError) {
    return { code: STATUS[err.status], name: err.status, message: err.clientMessage ?? STATUS_MESSAGES[err.status], cause: err.reason ?? err.status };
  }
  // SFTP v3 has no quota status (v5's QUOTA_EXCEEDED is unknown to v3 clients): FAILURE with words
  // clients that show the server's message print. Before isErrnoLike: it has a string `code` too.
  if (err instanceof QuotaExceeded) return { code: STATUS.FAILURE, name: 'FAILURE', message: QUOTA_MESSAGE, cause: QUOTA_CAUSE };
  if (isErrnoLike(err)) {
    const name = ERRNO_STATUS[err.code] ?? 'FAILURE';
    return { code: STATUS[name], name, message: STATUS_MESSAGES[name], cause: err.code };
  }
  return { code: STATUS.FAILURE, name: 'FAILURE', message: STATUS_MESSAGES.FAILURE, cause: err instanceof Error ? err.name : 'unknown' };
}
