/** The audit fan-out a server writes to: sinks from config.log, plus metrics when the admin listener is on. */
import { AggregatorRegistry } from 'prom-client';
import { Audit } from '../audit/events.js';
import { JsonSink, PrettySink } from '../audit/pino-sink.js';
import { AuthLogSink, XferlogSink } from '../audit/text-sinks.js';
import { Metrics } from '../admin/metrics.js';
import type { ServerConfig } from '../config/load.js';

export function auditFromConfig(config: ServerConfig, opts: { stdout?: boolean; extra?: Record<string, string | number> } = {}): Audit {
  const audit = new Audit(config.serverName, opts.extra);
  const log = config.log;
  if (log.level !== 'silent' && (log.file !== undefined || opts.stdout !== false)) {
    const pretty = log.pretty === 'always' || (log.pretty === 'auto' && !log.file && process.stdout.isTTY === true);
    audit.addSink(pretty ? new PrettySink(log.level) : new JsonSink({ file: log.file, level: log.level }));
  }
  if (log.xferlog) audit.addSink(new XferlogSink(log.xferlog));
  if (log.authLog) audit.addSink(new AuthLogSink(log.authLog));
  return audit;
}

/** Metrics fed from `audit` when config.admin is set; `metricsOnly` leaves serving them to the cluster primary. */
export function metricsFor(config: ServerConfig, audit: Audit, metricsOnly: boolean): Metrics | undefined {
  if (!config.admin) return undefined;
  const metrics = new Metrics();
  audit.addSink(metrics);
  if (metricsOnly) {
    // Constructing one installs prom-client's worker-side listener that answers the primary.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([metrics.registry]);
  }
  return metrics;
}
