/**
 * Typed errors. Every error the server raises on purpose has a stable `code`;
 * errors from the jail carry an errno name in `code`. The one place that turns
 * any of them into an SFTP status is src/sftp/status.ts.
 */

/** SFTP v3 status names (draft-ietf-secsh-filexfer-02 §7). */
export const STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;
export type StatusName = keyof typeof STATUS;
export const STATUS_NAMES = Object.keys(STATUS) as StatusName[];

/** An error that already knows which SFTP status it should become (policy, faults, protocol checks). */
export class SftpStatusError extends Error {
  override readonly name = 'SftpStatusError';
  readonly code = 'SFTP_STATUS';
  constructor(
    readonly status: StatusName,
    /** Message sent to the client; defaults to OpenSSH's text for the status. */
    readonly clientMessage?: string,
    /** Why, for the log only. */
    readonly reason?: string,
  ) {
    super(clientMessage ?? reason ?? status);
  }
}

/** A configuration problem: every issue at once, each with its JSON path. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  constructor(readonly issues: readonly { path: string; message: string }[]) {
    super(
      `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` +
        issues.map((i) => `  - ${i.path || '(top level)'}: ${i.message}`).join('\n'),
    );
  }
}

/** Errors from the jail addon: `code` is an errno name such as 'ENOENT'. */
export interface ErrnoLike {
  code: string;
  errno?: number;
  syscall?: string;
}

export function isErrnoLike(e: unknown): e is ErrnoLike {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string';
}

/**
 * A write, truncation, copy or new name would pass the user's quota (src/quota/). Its own class,
 * not an errno: status.ts maps it to FAILURE "Quota exceeded" and the transfer record says `quota`.
 */
export class QuotaExceeded extends Error {
  override readonly name = 'QuotaExceeded';
  readonly code = 'QUOTA_EXCEEDED';
  constructor(
    /** Which limit: the bytes or the number of files. */
    readonly limit: 'bytes' | 'files',
    message: string,
  ) {
    super(message);
  }
}

/** Thrown to drop the client's connection (fault injection: "network cut after N bytes"). */
export class ConnectionDrop extends Error {
  override readonly name = 'ConnectionDrop';
  readonly code = 'CONNECTION_DROP';
}
