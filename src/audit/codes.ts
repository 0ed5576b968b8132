/**
 * The coded words of the audit log, in one place. These values are matched by the auth log
 * (text-sinks.ts), the metrics labels (sftp_refusals_total{reason}, sftp_logins_total{outcome}),
 * contrib/fail2ban and users' own filters and alerts: add words, never reword one.
 */

/** `why` of request.refused. */
export const REFUSAL_REASONS = [
  // A connection (listener and admission; the auth log writes penalty and too-many-startups).
  'too-many-connections',
  'too-many-connections-from-source',
  'too-many-startups',
  'penalty',
  'proxy-untrusted',
  'proxy-protocol',
  'login-grace-exceeded',
  // A login, once the credentials are good.
  'too-many-sessions',
  'server shutting down',
  // A channel, session or SFTP request.
  'only sftp is allowed',
  'idle-timeout',
  'policy',
  'unsupported',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** `reason` of auth.failure. */
export const AUTH_FAILURE_REASONS = ['unknown-user', 'bad-password', 'bad-key', 'method-not-allowed', 'too-many-attempts', 'source-not-allowed', 'account-disabled', 'account-expired'] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/**
 * `reason` of connection.close and session.close: why the connection ended. The auth log turns
 * 'login grace time exceeded' into sshd's "Timeout before authentication".
 */
export const CLOSE_REASONS = [
  'closed by the client before identifying',
  'closed during key exchange',
  'closed by the client before logging in',
  'login grace time exceeded',
  'too many authentication failures',
  'penalty',
  'too-many-sessions',
  'server shutting down',
  'idle timeout',
  'server shutdown',
  // The account was disabled or expired (a reload, or its expiresAt passed) while its sessions ran.
  'account disabled',
  'account expired',
] as const;
/** A fixed reason, a transport error, or what the filesystem seam said when it dropped the connection. */
export type CloseReason = (typeof CLOSE_REASONS)[number] | `error: ${string}` | DropReason;
declare const dropped: unique symbol;
/** A ConnectionDrop's message from the SFTP session (e.g. fault injection's "injected drop after N bytes"). */
export type DropReason = string & { readonly [dropped]: true };
/** Marks a session's drop message as a close reason (the one reason not fixed here). */
export const dropReason = (message: string): DropReason => message as DropReason;

/** `code` of server.warning. */
export const WARNING_CODES = [
  /** A problem in the configuration that does not stop the server (a plain-text password). */
  'config',
  /** A host key the algorithm lists cannot use, so it is not offered. */
  'host-key-not-offered',
  /** ssh2's native crypto binding is missing: transfers run at half speed. */
  'crypto-binding-missing',
  /** The TCP listener reported an error. */
  'listener-error',
  /** SIGHUP: the new config was valid, applying it failed; the old one keeps serving. */
  'reload-failed',
  /** SIGHUP: the new config is invalid; the old one keeps serving. */
  'reload-refused',
  /** The shared store (config "shared") cannot be reached: limits count this instance alone. */
  'shared-store-unreachable',
  /** The shared store answers again. */
  'shared-store-back',
] as const;
export type WarningCode = (typeof WARNING_CODES)[number];

/** `reason` of hook.refused: why a notification was not stored (it is lost). */
export const HOOK_REFUSED_REASONS = [
  /** The hook's backlog holds maxBacklog undelivered notifications. */
  'backlog-full',
  /** The spool could not store it (disk full, permissions). */
  'spool-error',
] as const;
export type HookRefusedReason = (typeof HOOK_REFUSED_REASONS)[number];

/** `error` of a transfer record: a failure the server caused on purpose (an errno has `message` only). */
export const TRANSFER_ERRORS = [
  /** A WRITE or copy-data would have passed the user's quota (src/quota/). */
  'quota',
] as const;
export type TransferError = (typeof TRANSFER_ERRORS)[number];
