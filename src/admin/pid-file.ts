/**
 * `--pid-file PATH`: the daemon's pid, written once it listens (so a reader never signals a daemon
 * that cannot yet handle SIGUSR1/SIGHUP) and removed when it exits. logrotate's postrotate reads it
 * where systemd is not there to signal the daemon.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

/**
 * Writes `pid` to `path` atomically (a temporary file renamed over it) and removes the file at exit,
 * unless another process has written its own pid there since. Throws when the file cannot be written.
 */
export function writePidFile(path: string, pid = process.pid): void {
  const tmp = `${path}.${pid}.tmp`;
  try {
    writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
    throw e;
  }
  // First in line: an 'exit' listener that throws (a log stream's final flush) skips the ones after it.
  process.prependOnceListener('exit', () => removePidFile(path, pid));
}

/** Removes `path` if it still names `pid`. */
export function removePidFile(path: string, pid = process.pid): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(pid)) unlinkSync(path);
  } catch {
    // already gone
  }
}
