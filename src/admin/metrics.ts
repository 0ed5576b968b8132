/**
 * Prometheus metrics derived from the audit events (one source of truth), plus request latency
 * observed by the SFTP sessions. Registry per server instance: nothing global.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { AuditRecord, AuditSink } from '../audit/events.js';

/** What /metrics reads of one running hook at each scrape (the set changes on reload). */
export interface HookGauges {
  readonly name: string;
  readonly depth: number;
  oldestAgeSeconds(): number;
}

export type HookOutcome = 'delivered' | 'failed' | 'refused';

/** What /metrics reads of one user with a quota at each scrape (src/server/quota.ts). */
export interface QuotaGauges {
  readonly user: string;
  readonly bytes: number;
  readonly files: number;
  readonly limitBytes?: number | undefined;
  readonly limitFiles?: number | undefined;
}

export class Metrics implements AuditSink {
  readonly registry = new Registry();
  #hooks: () => readonly HookGauges[] = () => [];
  #quotas: () => readonly QuotaGauges[] = () => [];
  readonly #sessions = new Gauge({ name: 'sftp_sessions', help: 'Authenticated SSH sessions now open', registers: [this.registry] });
  readonly #logins = new Counter({ name: 'sftp_logins_total', help: 'Login attempts by outcome', labelNames: ['outcome', 'method'], registers: [this.registry] });
  readonly #bytes = new Counter({ name: 'sftp_bytes_total', help: 'File bytes moved, by direction', labelNames: ['direction'], registers: [this.registry] });
  readonly #files = new Counter({ name: 'sftp_files_total', help: 'Closed file transfers, by direction and status', labelNames: ['direction', 'status'], registers: [this.registry] });
  readonly #refusals = new Counter({ name: 'sftp_refusals_total', help: 'Refused channels, requests and connections, by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly #mutations = new Counter({ name: 'sftp_mutations_total', help: 'Filesystem changes by kind and outcome', labelNames: ['kind', 'ok'], registers: [this.registry] });
  // Gauges read the hooks when scraped; across workers the backlog adds up, the oldest is the oldest.
  readonly #hookBacklog: Gauge = new Gauge({
    name: 'sftp_hook_backlog',
    help: 'Notifications stored and not yet delivered, by hook',
    labelNames: ['hook'],
    registers: [this.registry],
    collect: () => this.#readHooks(this.#hookBacklog, (h) => h.depth),
  });
  readonly #hookOldest: Gauge = new Gauge({
    name: 'sftp_hook_oldest_seconds',
    help: 'Age of the oldest undelivered notification, by hook (0: none)',
    labelNames: ['hook'],
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.#readHooks(this.#hookOldest, (h) => h.oldestAgeSeconds()),
  });
  readonly #hookDeliveries = new Counter({
    name: 'sftp_hook_deliveries_total',
    help: 'Notification outcomes by hook: delivered, failed (an attempt, retried), refused (not stored: lost)',
    labelNames: ['hook', 'outcome'],
    registers: [this.registry],
  });
  readonly #bandwidthWait = new Counter({
    name: 'sftp_bandwidth_wait_seconds_total',
    help: 'Seconds requests waited for a bandwidth limit (user or server), summed over requests, by direction',
    labelNames: ['direction'],
    registers: [this.registry],
  });
  readonly #latency = new Histogram({
    name: 'sftp_request_duration_seconds',
    help: 'SFTP request latency by request name',
    labelNames: ['request'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });

  constructor(opts: { defaults?: boolean } = {}) {
    if (opts.defaults !== false) collectDefaultMetrics({ register: this.registry });
    // Present at 0 before any limit bites, so dashboards and alerts find the series.
    for (const direction of ['upload', 'download']) this.#bandwidthWait.inc({ direction }, 0);
    // Read from the quota registry at each scrape; usage is per process (README, Quotas).
    this.#quotaGauge('sftp_quota_used_bytes', "Bytes in the user's root, as counted for the quota", (q) => q.bytes);
    this.#quotaGauge('sftp_quota_limit_bytes', "The user's byte quota", (q) => q.limitBytes);
    this.#quotaGauge('sftp_quota_used_files', "Files, directories and symlinks in the user's root, as counted for the quota", (q) => q.files);
    this.#quotaGauge('sftp_quota_limit_files', "The user's files quota", (q) => q.limitFiles);
  }

  write(r: AuditRecord): void {
    switch (r.event) {
      case 'auth.success':
        this.#logins.inc({ outcome: 'success', method: r.method });
        return;
      case 'auth.failure':
        if (!r.probe) this.#logins.inc({ outcome: r.reason, method: r.method });
        return;
      case 'session.open':
        this.#sessions.inc();
        return;
      case 'session.close':
        this.#sessions.dec();
        return;
      case 'request.refused':
        this.#refusals.inc({ reason: r.why });
        return;
      case 'transfer':
        if (r.bytesWritten) this.#bytes.inc({ direction: 'upload' }, r.bytesWritten);
        if (r.bytesRead) this.#bytes.inc({ direction: 'download' }, r.bytesRead);
        this.#files.inc({ direction: r.direction, status: r.status });
        return;
      case 'mkdir': case 'rmdir': case 'remove': case 'rename': case 'symlink': case 'link': case 'setstat': case 'copy':
        this.#mutations.inc({ kind: r.event, ok: String(r.ok) });
        return;
      default:
    }
  }

  /** The running hooks, read at each scrape; their outcome counters start at 0. */
  watchHooks(hooks: () => readonly HookGauges[]): void {
    this.#hooks = hooks;
    for (const h of hooks()) for (const outcome of ['delivered', 'failed', 'refused'] as const) this.#hookDeliveries.inc({ hook: h.name, outcome }, 0);
  }

  countHook(hook: string, outcome: HookOutcome): void {
    this.#hookDeliveries.inc({ hook, outcome });
  }

  #readHooks(gauge: Gauge, value: (h: HookGauges) => number): void {
    gauge.reset();
    for (const h of this.#hooks()) gauge.set({ hook: h.name }, value(h));
  }

  /** Users with a quota, read at each scrape. */
  watchQuotas(quotas: () => readonly QuotaGauges[]): void {
    this.#quotas = quotas;
  }

  /** A gauge per user with a quota; across workers the largest is shown, not a sum (each counts on its own). */
  #quotaGauge(name: string, help: string, value: (q: QuotaGauges) => number | undefined): void {
    const gauge: Gauge = new Gauge({
      name,
      help,
      labelNames: ['user'],
      aggregator: 'max',
      registers: [this.registry],
      collect: () => {
        gauge.reset();
        for (const q of this.#quotas()) {
          const v = value(q);
          if (v !== undefined) gauge.set({ user: q.user }, v);
        }
      },
    });
  }

  /** A READ or WRITE waited `seconds` for a bandwidth limit (src/server/bandwidth.ts). */
  bandwidthWaited(direction: 'upload' | 'download', seconds: number): void {
    this.#bandwidthWait.inc({ direction }, seconds);
  }

  observeRequest(request: string, seconds: number): void {
    this.#latency.observe({ request }, seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
