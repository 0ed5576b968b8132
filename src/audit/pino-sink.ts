/** JSON audit records through pino, to stdout or a file, written asynchronously (never blocks requests). */
import { pino, type Logger, type Level } from 'pino';
import type { AuditRecord, AuditSink } from './events.js';

export interface JsonSinkOptions {
  /** File path, or undefined for stdout. */
  file?: string | undefined;
  level: string;
  /** Write synchronously (tests, short-lived CLIs). Default false. */
  sync?: boolean;
}

export type Destination = ReturnType<typeof pino.destination>;

/**
 * An append-only log file (or stdout). Asynchronous files batch their records, up to 8 KiB or
 * 100 ms: a write() per record slowed small-file uploads (bench/README.md). Shutdown and logrotate
 * flush what is buffered.
 */
export function openDestination(dest: string | 1, sync: boolean): Destination {
  return sync ? pino.destination({ dest, sync: true, mkdir: dest !== 1 }) : pino.destination({ dest, sync: false, mkdir: dest !== 1, minLength: 8192, periodicFlush: 100 });
}

/** Flushes what is buffered (if the file is open yet) and closes a pino destination. */
export function closeDestination(dest: Destination): void {
  try {
    dest.flushSync();
  } catch {
    /* not open yet, or already closed: nothing to flush */
  }
  dest.end();
}

/** A name byte that is not UTF-8 travels as a lone surrogate (src/sftp/names.ts). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * pino writes top-level strings without escaping lone surrogates (they reach the file as U+FFFD,
 * hiding which file it was); objects go through JSON.stringify, which writes `\udcbf`. So such a
 * string is handed over as an object that serialises to itself: a name byte 0xBF appears as
 * "\udcbf", which Python reads back exactly with `.encode('utf-8', 'surrogateescape')`.
 */
function escapedJson(s: string): { toJSON(): string } {
  return { toJSON: () => s };
}

export class JsonSink implements AuditSink {
  readonly #dest: Destination;
  readonly #log: Logger;
  constructor(opts: JsonSinkOptions) {
    this.#dest = openDestination(opts.file ?? 1, opts.sync ?? false);
    this.#log = pino(
      {
        level: opts.level,
        base: null,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
      },
      this.#dest,
    );
  }
  write(record: AuditRecord): void {
    const { time: _t, level, ...rest } = record;
    for (const [k, v] of Object.entries(rest)) if (typeof v === 'string' && LONE_SURROGATE.test(v)) (rest as Record<string, unknown>)[k] = escapedJson(v);
    this.#log[level as Level](rest);
  }
  reopen(): void {
    this.#dest.reopen();
  }
  async close(): Promise<void> {
    closeDestination(this.#dest);
  }
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** Human-readable lines for a terminal: time, event, user@remote, then the fields. */
export class PrettySink implements AuditSink {
  readonly #min: number;
  constructor(level: string, readonly out: NodeJS.WritableStream = process.stdout) {
    this.#min = level === 'silent' ? Infinity : LEVELS.indexOf(level);
  }
  write(r: AuditRecord): void {
    if (LEVELS.indexOf(r.level) < this.#min) return;
    const { time, level, server: _s, event, user, remote, sessionId: _id, ...rest } = r as AuditRecord & { user?: string; remote?: string; sessionId?: string };
    const who = user !== undefined ? `${JSON.stringify(user).slice(1, -1)}@${remote ?? ''}` : remote ?? '';
    const fields = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`)
      .join(' ');
    this.out.write(`${time.slice(11, 23)} ${level === 'info' ? '' : level.toUpperCase() + ' '}${event} ${who} ${fields}\n`);
  }
}
