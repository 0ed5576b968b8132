/**
 * What a request handler is given: the session's parts, and the options it was opened with.
 * A handler is a function of (context, request id, the request's fields) → Promise<Reply>.
 */
import type { SFTPWrapper } from 'ssh2';
import type { FileSystem } from '../fs/file-system.js';
import type { AuditEmitter, SessionTotals } from '../audit/events.js';
import type { Policy } from './policy.js';
import type { HandleTable } from './handles.js';
import type { HeadCache } from './head-cache.js';
import type { ReadBudget } from './read-budget.js';
import type { SessionLog } from './session-log.js';
import type { SymlinkOrder } from './symlink-order.js';
import type { BandwidthLimits, Throttle } from './throttle.js';
import type { Reply } from './reply-order.js';
import type { Path } from './virtual-path.js';

export interface SessionLimits {
  maxHandles: number;
  maxRequestsInFlight: number;
  /** Stop answering READs while this many reply bytes wait for the client's window. */
  maxInflightBytes: number;
}

export interface SessionOptions {
  user: string;
  sessionId: string;
  remote: string;
  /** The client's SSH identification string (for the SYMLINK argument order). */
  clientIdent: string;
  fs: FileSystem;
  policy: Policy;
  audit: AuditEmitter;
  limits: SessionLimits;
  startDirectory: string;
  umask: number;
  /** Stage new uploads under a hidden name until the client closes them (staged-upload.ts). */
  atomicUploads?: boolean;
  hashUploads: boolean;
  /** The user's and the server's bandwidth limits (throttle.ts); absent: unlimited. */
  bandwidth?: BandwidthLimits | undefined;
  /** When set (log.hostPaths), transfer records also carry the host path under this root. */
  hostRoot?: string | undefined;
  /** Called with each request's latency (metrics). */
  observeRequest?: ((request: string, seconds: number) => void) | undefined;
  /** Name shown for files owned by the server's own uid/gid (ls -l, users-groups-by-id). */
  ownerName: string;
  groupName: string;
}

/** close() has begun (in-flight requests finish, parked READs give up); then the channel is gone. */
export interface SessionState {
  ending: boolean;
  closed: boolean;
}

export interface RequestContext {
  readonly sftp: SFTPWrapper;
  readonly fs: FileSystem;
  readonly options: SessionOptions;
  readonly state: Readonly<SessionState>;
  readonly totals: SessionTotals;
  readonly handles: HandleTable;
  readonly heads: HeadCache;
  readonly reads: ReadBudget;
  readonly log: SessionLog;
  readonly symlinkOrder: SymlinkOrder;
  /** Holds WRITEs and READs back to the bandwidth limits. */
  readonly throttle: Throttle;
  /** Absolute virtual path for a client path (virtual-path.ts). */
  path(raw: Path): string;
}

/** How the runner treats a request, decided when it arrives (before the policy sees it). */
export interface RunOptions {
  /** This OPEN may change files (its flags). */
  writes?: boolean;
  /** Sees every failure of the request, the policy's included. */
  onError?: ((err: unknown) => void) | undefined;
}

/** ssh2 hands each event's fields over untyped; each handler names its own. */
export type Serve = (c: RequestContext, id: number, ...fields: any[]) => Promise<Reply>;

export type Arrive = (c: RequestContext, ...fields: any[]) => RunOptions;

export interface Handler {
  readonly serve: Serve;
  readonly arrive?: Arrive | undefined;
}
