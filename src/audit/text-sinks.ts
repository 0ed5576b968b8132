/**
 * Text sinks for FTP-era tools: the classic 14-field xferlog, and OpenSSH-style authentication
 * lines that fail2ban can match. Both append asynchronously and reopen on SIGUSR1 (logrotate).
 */
import { hostname } from 'node:os';
import type { AuditRecord, AuditSink } from './events.js';
import type { RefusalReason } from './codes.js';
import { escapeText, splitRemote } from './escape.js';
import { closeDestination, openDestination, type Destination } from './pino-sink.js';

abstract class LineFile implements AuditSink {
  readonly #dest: Destination;
  constructor(file: string, sync = false) {
    this.#dest = openDestination(file, sync);
  }
  protected line(text: string): void {
    this.#dest.write(text + '\n');
  }
  abstract write(record: AuditRecord): void;
  reopen(): void {
    this.#dest.reopen();
  }
  async close(): Promise<void> {
    closeDestination(this.#dest);
  }
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** xferlog(5) "DDD MMM dd hh:mm:ss YYYY", local time; the day is zero-padded so fields never hold a double space. */
export function xferlogTime(d: Date): string {
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`;
}

/**
 * One line per closed file handle:
 * current-time transfer-time remote-host file-size filename transfer-type special-action-flag
 * direction access-mode username service-name authentication-method authenticated-user-id
 * completion-status. current-time is five space-separated words, so a line splits into 18 words.
 * As ProFTPD does, spaces in file names are written as "_"; control characters and backslashes are
 * escaped as \xNN so a name can never add a field or a line.
 */
export function xferlogLine(r: Extract<AuditRecord, { event: 'transfer' }>): string {
  const { ip } = splitRemote(r.remote);
  const upload = r.bytesWritten > 0 || (r.bytesRead === 0 && r.direction === 'upload');
  const size = upload ? r.bytesWritten : r.bytesRead;
  const seconds = Math.round(r.durationMs / 1000);
  return [
    xferlogTime(new Date(r.time)),
    seconds,
    ip,
    size,
    escapeText(r.path, { space: '_' }),
    'b',
    '_',
    upload ? 'i' : 'o',
    'r',
    escapeText(r.user ?? '-', { space: '_' }),
    'sftp',
    '0',
    '*',
    r.status === 'complete' ? 'c' : 'i',
  ].join(' ');
}

export class XferlogSink extends LineFile {
  write(r: AuditRecord): void {
    if (r.event === 'transfer') this.line(xferlogLine(r));
  }
}

const KEY_NAMES: Record<string, string> = { 'ssh-ed25519': 'ED25519', 'ssh-rsa': 'RSA', 'ecdsa-sha2-nistp256': 'ECDSA', 'ecdsa-sha2-nistp384': 'ECDSA', 'ecdsa-sha2-nistp521': 'ECDSA' };

/** Refusals sshd would log itself; the others (a refused exec, a policy decision) are not about logging in. */
const LOGGED_REFUSALS: ReadonlySet<RefusalReason> = new Set(['penalty', 'too-many-startups']);

/** What every auth log line says about the client: the line's prefix, its address, its user name escaped. */
interface From {
  prefix: string;
  /** "<ip> port <port>", as sshd writes it. */
  peer: string;
  user: string;
}

/**
 * OpenSSH's wording (auth.c) so existing habits and filters carry over, prefixed with an ISO time
 * and `host sftp-chroot[pid]:`. User names are escaped and spaces written as \x20: a user name can
 * never carry a fake "from <ip>".
 */
export function authLogLines(r: AuditRecord, host = hostname(), pid = process.pid): string[] {
  if (r.event !== 'auth.success' && r.event !== 'auth.failure' && r.event !== 'connection.close' && r.event !== 'request.refused') return [];
  const { ip, port } = splitRemote(r.remote);
  const from: From = { prefix: `${r.time} ${host} sftp-chroot[${pid}]:`, peer: `${ip} port ${port}`, user: escapeText(r.user ?? '', { space: '\\x20' }) };
  switch (r.event) {
    case 'auth.success': {
      const key = r.keyType ? `: ${KEY_NAMES[r.keyType] ?? r.keyType} ${r.keyFingerprint ?? ''}` : '';
      return [`${from.prefix} Accepted ${r.method} for ${from.user} from ${from.peer} ssh2${key}`];
    }
    case 'auth.failure':
      return failureLines(r, from);
    case 'connection.close':
      return [closeLine(r, from)];
    case 'request.refused':
      return LOGGED_REFUSALS.has(r.why) ? [`${from.prefix} Refused connection from ${from.peer}: ${escapeText(r.why)}`] : [];
  }
}

/** sshd's lines for a connection that never logged in (fail2ban's "aggressive" sshd modes match them). */
function closeLine(r: Extract<AuditRecord, { event: 'connection.close' }>, { prefix, peer, user }: From): string {
  if (r.reason === 'login grace time exceeded') return `${prefix} Timeout before authentication for ${peer}`;
  if (r.stage === 'ident') return `${prefix} Did not receive identification string from ${peer}`;
  return `${prefix} Connection closed by ${r.user !== undefined ? `authenticating user ${user} ` : ''}${peer} [preauth]`;
}

function failureLines(r: Extract<AuditRecord, { event: 'auth.failure' }>, { prefix, peer, user }: From): string[] {
  switch (r.reason) {
    case 'unknown-user':
      return [`${prefix} Invalid user ${user} from ${peer}`, ...(r.method === 'none' ? [] : [`${prefix} Failed ${r.method} for invalid user ${user} from ${peer} ssh2`])];
    case 'too-many-attempts':
      return [`${prefix} Disconnecting authenticating user ${user} ${peer}: Too many authentication failures [preauth]`];
    case 'source-not-allowed':
      return [`${prefix} Refused connection from ${peer}: user ${user} not allowed from this address`];
    // sshd's words for a locked or expired account, then the failed attempt fail2ban counts.
    case 'account-disabled':
      return [`${prefix} User ${user} not allowed because account is locked`, `${prefix} Failed ${r.method} for ${user} from ${peer} ssh2`];
    case 'account-expired':
      return [`${prefix} Account ${user} has expired`, `${prefix} Failed ${r.method} for ${user} from ${peer} ssh2`];
    default:
      return [`${prefix} Failed ${r.method} for ${user} from ${peer} ssh2`];
  }
}

export class AuthLogSink extends LineFile {
  write(r: AuditRecord): void {
    // A public-key query ("would you accept this key?") is not a failed login, as in OpenSSH.
    if (r.event === 'auth.failure' && r.probe) return;
    for (const l of authLogLines(r)) this.line(l);
  }
}
