/**
 * Who may connect and who may log in: per-source penalties, caps and maxStartups (Defence), the
 * users' allowFrom lists, and sessions per user counted across worker processes. One per server;
 * reload(config) takes new limits and lists and keeps the counts and penalties.
 */
import type { BlockList, Socket } from 'node:net';
import type { AuditEmitter } from '../audit/events.js';
import type { RefusalReason } from '../audit/codes.js';
import type { ServerConfig, UserRecord } from '../config/load.js';
import { UNLIMITED_SESSIONS } from '../config/schema.js';
import { addressInList, parseCidrList } from '../parse/cidr.js';
import { Defence, type DefenceOptions } from './defence.js';
import { Tally } from './tally.js';

/** Messages between worker processes (node:cluster) so limits and penalties hold across them. */
export type PeerMessage =
  | { t: 'auth-failed'; ip: string }
  | { t: 'auth-succeeded'; ip: string }
  | { t: 'session-admitted'; user: string }
  | { t: 'session-released'; user: string };

/** A channel to the other workers of one daemon (see src/cluster.ts). */
export interface Peers {
  send(msg: PeerMessage): void;
  onMessage(handler: (msg: PeerMessage) => void): void;
}

/**
 * Sessions counted across instances (src/shared/redis-store.ts): a lease per session, taken only if
 * fewer than `max` are held by all instances. Rejects when the store cannot be reached.
 */
export interface SessionLeases {
  acquireSession(user: string, session: string, max: number): Promise<boolean>;
  releaseSession(user: string, session: string): void;
}

/** Why a login with good credentials is refused. */
export type SessionRefusal = Extract<RefusalReason, 'too-many-sessions' | 'server shutting down'>;

const defenceOptions = (c: ServerConfig): DefenceOptions => ({ maxStartups: c.limits.maxStartups, maxConnectionsPerSource: c.limits.maxConnectionsPerSource, penalty: c.limits.penalty });

function allowListsOf(c: ServerConfig): Map<string, BlockList> {
  const lists = new Map<string, BlockList>();
  for (const u of c.users) {
    const list = u.allowFrom ? parseCidrList(u.allowFrom) : undefined;
    if (list && !(list instanceof Error)) lists.set(u.username, list);
  }
  return lists;
}

export class Admission {
  readonly #defence: Defence;
  readonly #audit: AuditEmitter;
  readonly #peers: Peers | undefined;
  readonly #leases: SessionLeases | undefined;
  /** Sessions holding a lease in the shared store. */
  readonly #leased = new Set<string>();
  #maxSessionsPerUser: number;
  #allowLists: Map<string, BlockList>;
  readonly #sessions = new Tally();
  /** Sessions other worker processes hold, by user (so maxSessions counts the whole daemon). */
  readonly #peerSessions = new Tally();
  /** Sockets still counted as unauthenticated "startups", and how to stop counting them. */
  readonly #startupDone = new WeakMap<Socket, () => void>();
  #draining = false;

  constructor(config: ServerConfig, audit: AuditEmitter, peers?: Peers, random?: () => number, leases?: SessionLeases) {
    this.#defence = new Defence(defenceOptions(config), random);
    this.#audit = audit;
    this.#peers = peers;
    this.#leases = leases;
    this.#maxSessionsPerUser = config.limits.maxSessionsPerUser;
    this.#allowLists = allowListsOf(config);
    peers?.onMessage((m) => this.#onPeerMessage(m));
  }

  reload(config: ServerConfig): void {
    this.#defence.update(defenceOptions(config));
    this.#allowLists = allowListsOf(config);
    this.#maxSessionsPerUser = config.limits.maxSessionsPerUser;
  }

  /** Shutting down: logins are refused from now on. */
  drain(): void {
    this.#draining = true;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Per-source admission of a new connection, with the client's own address (after any PROXY
   * header). A refusal is logged and false returned; an admitted socket counts as a startup until
   * it logs in or closes.
   */
  admitConnection(socket: Socket, remote: string): boolean {
    const ip = socket.remoteAddress ?? 'unknown';
    const refusal = this.#defence.admitConnection(ip);
    if (refusal) {
      const detail = refusal === 'penalty' ? { detail: `refused until ${new Date(this.#defence.blockedUntil(ip)).toISOString()}` } : {};
      this.#audit.emit({ event: 'request.refused', remote, what: 'connection', why: refusal, ...detail });
      return false;
    }
    let startup = true;
    const done = () => {
      if (startup) this.#defence.startupDone();
      startup = false;
    };
    this.#startupDone.set(socket, done);
    socket.once('close', () => {
      done();
      this.#defence.connectionClosed(ip);
    });
    return true;
  }

  /** The user's allowFrom check. */
  sourceAllowed(user: UserRecord, ip: string): boolean {
    const list = this.#allowLists.get(user.username);
    return !list || addressInList(list, ip);
  }

  #maxSessionsOf(user: UserRecord): number {
    return Math.min(user.maxSessions ?? Infinity, this.#maxSessionsPerUser);
  }

  /** Counts a session for `user` in this daemon, or says why it may not have one. */
  admitSession(user: UserRecord): SessionRefusal | null {
    if (this.#draining) return 'server shutting down';
    const held = this.#sessions.get(user.username) + this.#peerSessions.get(user.username);
    if (held >= this.#maxSessionsOf(user)) return 'too-many-sessions';
    this.#sessions.add(user.username, 1);
    this.#peers?.send({ t: 'session-admitted', user: user.username });
    return null;
  }

  /**
   * After admitSession: with a shared store, the session also needs a lease among all instances
   * (only when the user's sessions are capped). An unreachable store leaves the decision to this
   * daemon's own count (the store warns). A refusal undoes admitSession's count itself.
   */
  async shareSession(user: UserRecord, session: string): Promise<SessionRefusal | null> {
    const max = this.#maxSessionsOf(user);
    if (!this.#leases || max >= UNLIMITED_SESSIONS) return null;
    try {
      if (!(await this.#leases.acquireSession(user.username, session, max))) {
        // Refused by the other instances: this daemon's count of it is undone here.
        this.releaseSession(user);
        return 'too-many-sessions';
      }
      this.#leased.add(session);
    } catch {
      /* unreachable: counted here alone */
    }
    return null;
  }

  releaseSession(user: UserRecord, session?: string): void {
    this.#sessions.add(user.username, -1);
    this.#peers?.send({ t: 'session-released', user: user.username });
    if (session !== undefined && this.#leased.delete(session)) this.#leases?.releaseSession(user.username, session);
  }

  /** A failed login; returns a penalty in seconds when the source is now blocked. */
  authFailed(ip: string): number {
    this.#peers?.send({ t: 'auth-failed', ip });
    return this.#defence.authFailed(ip);
  }

  /** A login: clears the source's failures and stops counting its socket as a startup. */
  authSucceeded(ip: string, socket: Socket | undefined): void {
    this.#peers?.send({ t: 'auth-succeeded', ip });
    this.#defence.authSucceeded(ip);
    if (socket) this.#startupDone.get(socket)?.();
  }

  #onPeerMessage(m: PeerMessage): void {
    if (m.t === 'auth-failed') this.#defence.authFailed(m.ip);
    else if (m.t === 'auth-succeeded') this.#defence.authSucceeded(m.ip);
    else this.#peerSessions.add(m.user, m.t === 'session-admitted' ? 1 : -1);
  }
}
