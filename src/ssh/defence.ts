/**
 * Brute-force and overload defence, per server instance:
 * - maxStartups "start:rate:full" (sshd semantics): with `start` or more unauthenticated
 *   connections, refuse new ones with probability rate% rising linearly to 100% at `full`;
 * - per-source penalties: after `threshold` failed logins from one address, refuse that address
 *   for authFailSeconds, doubling on each repeat up to maxSeconds; a success clears the record;
 * - per-source connection cap.
 */
import type { RefusalReason } from '../audit/codes.js';
import { Tally } from './tally.js';

export interface DefenceOptions {
  maxStartups: string;
  maxConnectionsPerSource: number;
  penalty: { enabled: boolean; authFailSeconds: number; maxSeconds: number; threshold: number };
}

interface SourceState {
  failures: number;
  blockedUntil: number;
  penalties: number;
  lastSeen: number;
}

/** Why Defence refuses a new connection. */
export type SourceRefusal = Extract<RefusalReason, 'penalty' | 'too-many-connections-from-source' | 'too-many-startups'>;

export function parseMaxStartups(spec: string): { start: number; rate: number; full: number } {
  const parts = spec.split(':').map(Number);
  if (parts.length === 1) return { start: parts[0]!, rate: 100, full: parts[0]! };
  return { start: parts[0]!, rate: parts[1]!, full: parts[2]! };
}

export class Defence {
  #opts: DefenceOptions;
  #startups = 0;
  readonly #sources = new Map<string, SourceState>();
  readonly #connections = new Tally();
  readonly #random: () => number;

  constructor(opts: DefenceOptions, random: () => number = Math.random) {
    this.#opts = opts;
    this.#random = random;
  }

  update(opts: DefenceOptions): void {
    this.#opts = opts;
  }

  /** Why a new connection from `ip` must be refused, or null. Counts it as unauthenticated. */
  admitConnection(ip: string, now = Date.now()): SourceRefusal | null {
    const src = this.#sources.get(ip);
    if (src && src.blockedUntil > now) return 'penalty';
    if (this.#connections.get(ip) >= this.#opts.maxConnectionsPerSource) return 'too-many-connections-from-source';
    const { start, rate, full } = parseMaxStartups(this.#opts.maxStartups);
    if (this.#startups >= full) return 'too-many-startups';
    if (this.#startups >= start) {
      const p = rate / 100 + (1 - rate / 100) * ((this.#startups - start) / Math.max(1, full - start));
      if (this.#random() < p) return 'too-many-startups';
    }
    this.#startups++;
    this.#connections.add(ip, 1);
    return null;
  }

  /** The connection authenticated (or ended before): it no longer counts as a startup. */
  startupDone(): void {
    if (this.#startups > 0) this.#startups--;
  }

  connectionClosed(ip: string): void {
    this.#connections.add(ip, -1);
  }

  /** Records a failed login; returns the penalty in seconds if the source is now blocked. */
  authFailed(ip: string, now = Date.now()): number {
    const p = this.#opts.penalty;
    if (!p.enabled) return 0;
    const src = this.#sources.get(ip) ?? { failures: 0, blockedUntil: 0, penalties: 0, lastSeen: now };
    src.failures++;
    src.lastSeen = now;
    this.#sources.set(ip, src);
    if (src.failures < p.threshold) return 0;
    const seconds = Math.min(p.maxSeconds, p.authFailSeconds * 2 ** src.penalties);
    src.penalties++;
    src.failures = 0;
    src.blockedUntil = now + seconds * 1000;
    this.#prune(now);
    return seconds;
  }

  authSucceeded(ip: string): void {
    this.#sources.delete(ip);
  }

  blockedUntil(ip: string): number {
    return this.#sources.get(ip)?.blockedUntil ?? 0;
  }

  /** Forget sources idle for longer than the maximum penalty, so the map cannot grow without bound. */
  #prune(now: number): void {
    if (this.#sources.size < 10_000) return;
    const horizon = now - Math.max(this.#opts.penalty.maxSeconds * 1000, 3600_000);
    for (const [ip, s] of this.#sources) if (s.lastSeen < horizon && s.blockedUntil < now) this.#sources.delete(ip);
  }
}
