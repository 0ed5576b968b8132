/**
 * State several instances share through Redis or Valkey (config `shared`): session leases (so
 * maxSessions holds across instances), which instances are moving a user's bytes (so they split a
 * bandwidth limit), and each quota root's usage. Optional: without `shared` nothing here runs.
 *
 * Unreachable store: every call fails fast (no offline queue) and the caller falls back to what
 * this process knows alone, as a single instance would; one server.warning says so and another
 * when the store is back. Leases are kept alive by this instance and expire on their own when it
 * dies, so a crashed instance's sessions stop counting after leaseSeconds.
 * Times come from the store's clock (TIME), so instances with skewed clocks agree.
 */
import { createClient, type RedisClientType } from '@redis/client';
import { randomBytes } from 'node:crypto';
import type { AuditEmitter } from '../audit/events.js';
import type { SharedSetting } from '../config/shared.js';

/** Redis TIME in milliseconds, inside a script. */
const NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/** KEYS[1] a user's lease set; ARGV: member, max, lease ms. 1 if taken (or already held), 0 if full. */
const ACQUIRE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1`;

/** KEYS: lease sets; ARGV[1] lease ms, then one member per key: extends each lease. */
const RENEW = `${NOW}
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]) * 2)
end
return 1`;

/** KEYS: "who is active" sets; ARGV[1] lease ms, ARGV[2] this instance: marks it active, returns each set's live count. */
const ACTIVE = `${NOW}
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  redis.call('ZADD', key, now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]) * 2)
  counts[i] = redis.call('ZCARD', key)
end
return counts`;

/** KEYS[1] the walk's claim, KEYS[2] the usage hash; ARGV: instance, claim ms. 1 if this instance walks. */
const CLAIM_SCAN = `if redis.call('HGET', KEYS[2], 'counted') == '1' then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  -- Changes counted before any walk (or by a walk that died) are in what this walk will find.
  redis.call('DEL', KEYS[2])
  return 1
end
return 0`;

export interface SharedUsage {
  bytes: number;
  files: number;
  /** An instance walked the root and added what it found (later starts adopt the count). */
  counted: boolean;
}

export class RedisStore {
  readonly instance = `${process.pid}-${randomBytes(6).toString('hex')}`;
  readonly #client: RedisClientType;
  readonly #prefix: string;
  readonly #leaseMs: number;
  readonly #audit: AuditEmitter;
  /** Leases this instance holds: lease set key → members. */
  readonly #held = new Map<string, Set<string>>();
  readonly #renewTimer: NodeJS.Timeout;
  #reachable = true;
  #closed = false;

  constructor(setting: SharedSetting, audit: AuditEmitter) {
    this.#prefix = setting.keyPrefix;
    this.#leaseMs = setting.leaseSeconds * 1000;
    this.#audit = audit;
    const unix = setting.redis.startsWith('unix://') ? setting.redis.slice('unix://'.length) : undefined;
    this.#client = createClient({
      ...(unix ? { socket: { path: unix, reconnectStrategy: retry } } : { url: setting.redis, socket: { reconnectStrategy: retry, connectTimeout: 2000 } }),
      // Fail at once while disconnected: callers fall back to local state instead of waiting.
      disableOfflineQueue: true,
    }) as RedisClientType;
    this.#client.on('error', () => this.#unreachable());
    this.#client.on('ready', () => this.#backAgain());
    this.#renewTimer = setInterval(() => void this.#renew(), this.#leaseMs / 3);
    this.#renewTimer.unref();
  }

  /**
   * Connects, waiting at most `waitMs`: a store that cannot be reached now is a warning, not a
   * failed start (the client keeps trying in the background and says when it is back).
   */
  async connect(waitMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const connected = await Promise.race([
      this.#client.connect().then(() => true, () => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs))),
    ]);
    clearTimeout(timer);
    if (!connected) this.#unreachable();
  }

  #key(...parts: string[]): string {
    return this.#prefix + parts.map(encodeURIComponent).join(':');
  }

  #eval(script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.#call(() => this.#client.eval(script, { keys, arguments: args.map(String) }));
  }

  #unreachable(): void {
    if (!this.#reachable || this.#closed) return;
    this.#reachable = false;
    this.#audit.emit({ event: 'server.warning', code: 'shared-store-unreachable', message: 'the shared store (config "shared") cannot be reached: session caps, bandwidth shares and quota usage count this instance alone until it is back' });
  }

  #backAgain(): void {
    if (this.#reachable || this.#closed) return;
    this.#reachable = true;
    this.#audit.emit({ event: 'server.warning', code: 'shared-store-back', message: 'the shared store is reachable again' });
    // Leases that expired meanwhile are taken again: this instance's sessions count once more.
    void this.#renew();
  }

  // --- sessions --------------------------------------------------------------------------------

  /** Takes a lease for one more session of `user` if fewer than `max` are held by all instances. Rejects when unreachable. */
  async acquireSession(user: string, session: string, max: number): Promise<boolean> {
    const key = this.#key('sessions', user);
    const member = `${this.instance}:${session}`;
    const ok = (await this.#eval(ACQUIRE, [key], [member, max, this.#leaseMs])) === 1;
    if (ok) (this.#held.get(key) ?? this.#held.set(key, new Set()).get(key)!).add(member);
    return ok;
  }

  releaseSession(user: string, session: string): void {
    const key = this.#key('sessions', user);
    const member = `${this.instance}:${session}`;
    const set = this.#held.get(key);
    set?.delete(member);
    if (set?.size === 0) this.#held.delete(key);
    this.#client.zRem(key, member).catch(() => undefined);
  }

  async #renew(): Promise<void> {
    if (this.#held.size === 0 || this.#closed) return;
    const keys = [...this.#held.keys()];
    for (const key of keys) {
      const members = [...this.#held.get(key)!];
      await this.#eval(RENEW, members.map(() => key), [this.#leaseMs, ...members]).catch(() => undefined);
    }
  }

  // --- bandwidth -------------------------------------------------------------------------------

  /**
   * Marks this instance as moving bytes for each of `names` (e.g. "alice:upload") for a lease, and
   * answers how many instances are, each. Rejects when unreachable.
   */
  async activeInstances(names: readonly string[], ttlMs: number): Promise<number[]> {
    if (names.length === 0) return [];
    const r = (await this.#eval(ACTIVE, names.map((n) => this.#key('bandwidth', n)), [ttlMs, this.instance])) as number[];
    return r.map(Number);
  }

  // --- quota usage -----------------------------------------------------------------------------

  /** The root's shared usage (`counted`: an instance walked it once), or undefined when none has. Rejects when unreachable. */
  async usage(root: string): Promise<SharedUsage | undefined> {
    const h = await this.#call(() => this.#client.hGetAll(this.#key('usage', root)));
    if (Object.keys(h).length === 0) return undefined;
    return { bytes: Number(h['bytes'] ?? 0), files: Number(h['files'] ?? 0), counted: h['counted'] === '1' };
  }

  /** Adds signed changes to the root's usage and answers the new totals (every instance's changes included). */
  async addUsage(root: string, bytes: number, files: number): Promise<SharedUsage> {
    const key = this.#key('usage', root);
    const [b, f, counted] = (await this.#call(() => this.#client.multi().hIncrBy(key, 'bytes', bytes).hIncrBy(key, 'files', files).hGet(key, 'counted').exec())) as unknown as [number, number, string | null];
    return { bytes: Number(b), files: Number(f), counted: counted === '1' };
  }

  /**
   * Claims the one walk of a root no instance has counted yet: false if another instance holds the
   * claim or has counted it already (checked together, so a walk that just ended is not repeated).
   */
  async claimScan(root: string, ttlMs: number): Promise<boolean> {
    return (await this.#eval(CLAIM_SCAN, [this.#key('scan', root), this.#key('usage', root)], [this.instance, ttlMs])) === 1;
  }

  /** The walk's total is in the usage (added through addUsage): later starts adopt it instead of walking. */
  async scanCounted(root: string): Promise<void> {
    await this.#call(() => this.#client.hSet(this.#key('usage', root), 'counted', '1'));
  }

  /** A call that marks the store unreachable when it fails, and reachable when it answers. */
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const r = await fn();
      if (!this.#reachable) this.#backAgain();
      return r;
    } catch (e) {
      this.#unreachable();
      throw e;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#renewTimer);
    // Our leases go now rather than after leaseSeconds.
    const pending = [...this.#held.entries()].map(([key, members]) => this.#client.zRem(key, [...members]).catch(() => undefined));
    await Promise.all(pending);
    this.#held.clear();
    this.#client.destroy();
  }
}

/** Retries every second at most: an unreachable store is re-tried without flooding the log. */
const retry = (attempt: number): number => Math.min(100 * (attempt + 1), 1000);
